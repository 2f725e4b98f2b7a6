import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStorage } from './sqlite-storage.js';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

describe('SqliteStorage', () => {
  let dir: string;
  const open: SqliteStorage[] = [];
  const file = (name = 'custos.db') => join(dir, name);
  function make(options: Partial<ConstructorParameters<typeof SqliteStorage>[0]> = {}): SqliteStorage {
    const storage = new SqliteStorage({ path: file(), ...options });
    open.push(storage);
    return storage;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-sqlite-'));
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs in WAL mode with FULL sync, a busy timeout and foreign keys by default', () => {
    expect(make().settings()).toEqual({ journalMode: 'wal', synchronous: 2, busyTimeoutMs: 5000, foreignKeys: true });
    const relaxed = new SqliteStorage({ path: file('b.db'), synchronous: 'normal', busyTimeoutMs: 50 });
    open.push(relaxed);
    expect(relaxed.settings()).toMatchObject({ synchronous: 1, busyTimeoutMs: 50 });
  });

  it('creates the database file readable by its owner only', async () => {
    const storage = make();
    await storage.migrate();
    await storage.entries.put('ns', 'k', new Uint8Array([1]));
    expect((await stat(file())).mode & 0o777).toBe(0o600);
    expect((await stat(`${file()}-wal`)).mode & 0o777).toBe(0o600);
  });

  it('finds its data after a reopen', async () => {
    const first = new SqliteStorage({ path: file() });
    await first.migrate();
    await first.entries.put('ns', 'k', new Uint8Array([7, 0, 7]), { expiresAt: 123 });
    await first.audit.append([{ seq: 1, ts: 't', prevHash: 'p', hash: 'h', event: '{}' }]);
    await first.close();
    const second = make();
    await second.migrate();
    expect(await second.entries.get('ns', 'k')).toEqual({ key: 'k', value: new Uint8Array([7, 0, 7]), expiresAt: 123 });
    expect((await second.audit.head())?.seq).toBe(1);
  });

  it('migrates once when two connections share a file', async () => {
    const [a, b] = [make(), make()];
    await Promise.all([a.migrate(), b.migrate()]);
    await a.entries.put('ns', 'k', new Uint8Array([1]));
    expect(await b.entries.list('ns', '')).toEqual(['k']);
  });

  it('makes operations outside a transaction wait for it, then see its writes', async () => {
    const storage = make({ path: ':memory:' });
    await storage.migrate();
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const tx = storage.transaction(async (t) => {
      await t.entries.put('ns', 'k', new Uint8Array([1]));
      await gate;
      await t.entries.put('ns', 'k', new Uint8Array([2]));
      order.push('commit');
    });
    const outside = storage.entries.get('ns', 'k').then((e) => {
      order.push('read');
      return e;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual([]);
    release();
    await tx;
    expect((await outside)?.value).toEqual(new Uint8Array([2]));
    expect(order).toEqual(['commit', 'read']);
  });

  it('rejects, instead of deadlocking, the outer store or a nested transaction used inside fn', async () => {
    const storage = make({ path: ':memory:' });
    await storage.migrate();
    await storage.transaction(async (tx) => {
      await expect(storage.entries.get('ns', 'k')).rejects.toThrow(/use the tx given to fn/);
      await expect(storage.transaction(async () => 1)).rejects.toThrow(/use the tx given to fn/);
      await tx.entries.put('ns', 'k', new Uint8Array([1]));
    });
    expect(await storage.entries.list('ns', '')).toEqual(['k']);
  });

  // NORMAL as well as FULL: WAL commits reach the OS before they are acknowledged.
  it.each(['full', 'normal'])(
    'keeps every acknowledged write across a SIGKILL of the process (%s)',
    async (sync) => {
      // The writer runs our TypeScript source through vite-node (the runner vitest uses).
      const child = spawn(
        process.execPath,
        [
          join(repoRoot, 'node_modules/vite-node/vite-node.mjs'),
          '--config',
          join(repoRoot, 'vitest.config.ts'),
          join(repoRoot, 'packages/storage/src/sqlite/test-support/sigkill-writer.ts'),
          file(),
          sync,
        ],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let acked = 0;
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      await new Promise<void>((resolve, reject) => {
        let buffered = '';
        child.stdout.on('data', (d: Buffer) => {
          buffered += d.toString();
          const lines = buffered.split('\n');
          buffered = lines.pop()!;
          for (const l of lines) acked = Number(l);
          if (acked >= 300) {
            child.kill('SIGKILL');
            resolve();
          }
        });
        child.on('exit', () => (acked >= 300 ? resolve() : reject(new Error(`writer exited early: ${stderr}`))));
      });
      await new Promise((r) => child.once('close', r));
      const storage = make();
      const head = (await storage.audit.head())!.seq;
      expect(head).toBeGreaterThanOrEqual(acked);
      const keys = await storage.entries.list('sys', 'k/');
      expect(keys.length).toBe(head);
      for (let i = 1; i <= acked; i++) expect(await storage.entries.get('sys', `k/${i}`)).toBeDefined();
    },
    60_000,
  );
});
