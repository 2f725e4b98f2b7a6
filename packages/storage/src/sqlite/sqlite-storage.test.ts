import { spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../migrations/migration-list.js';
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
    expect(make().settings()).toEqual({
      journalMode: 'wal',
      synchronous: 2,
      busyTimeoutMs: 5000,
      foreignKeys: true,
      lockingMode: 'normal',
    });
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

  it('upgrades a database of the first schema: its audit checkpoints stay, as legacy (v1) ones', async () => {
    // A database as the first release left it: migration 1 only, one checkpoint row.
    const old = new Database(file());
    old.exec(MIGRATIONS[0]!.sqlite);
    old.exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
      INSERT INTO schema_migrations VALUES (1, 'entries and audit log', '2026-01-01T00:00:00.000Z');
      INSERT INTO audit_checkpoints (seq, hash, ts, key_id, signature) VALUES (7, 'h7', 't7', 'k', 's7');`);
    old.close();
    const upgraded = make();
    await upgraded.migrate();
    expect(await upgraded.audit.checkpoints()).toEqual([
      { version: 1, seq: 7, hash: 'h7', ts: 't7', keyId: 'k', signature: 's7' },
    ]);
    // The first chained checkpoint names it.
    const chained = { version: 2 as const, seq: 9, hash: 'h9', ts: 't9', keyId: 'k', signature: 's9' };
    await upgraded.audit.appendCheckpoint({
      ...chained,
      prevSeq: 7,
      prevDigest: '0'.repeat(64),
      every: 10,
      intervalMs: 1,
    });
    expect((await upgraded.audit.lastCheckpoint())?.seq).toBe(9);
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

  it('holds the file alone when exclusive: a second connection is refused', async () => {
    const owner = make({ exclusive: true });
    await owner.migrate();
    await owner.entries.put('ns', 'k', new Uint8Array([1]));
    const fds = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(file());
        } catch {
          return false;
        }
      }).length;
    const held = fds();
    for (let i = 0; i < 5; i++) {
      expect(() => make({ busyTimeoutMs: 50 })).toThrow('The database file is in use by another process.');
    }
    // Each refused open released what it had opened. (SQLite may keep one
    // descriptor of a closed connection for reuse while another connection of
    // this process holds POSIX locks on the file: closing it would drop them.)
    expect(fds()).toBeLessThanOrEqual(held + 1);
    expect(() => make({ busyTimeoutMs: 50, exclusive: true })).toThrow(/in use by another process/);
    await owner.close();
    // Released on close: the next one may open it.
    const next = make({ exclusive: true });
    expect((await next.entries.get('ns', 'k'))?.value).toEqual(new Uint8Array([1]));
  });

  describe('entry cache (exclusive connection)', () => {
    const bytes = (n: number) => new Uint8Array([n]);

    it('serves what is committed: a write outside or inside a transaction replaces a cached answer', async () => {
      const storage = make({ exclusive: true });
      await storage.migrate();
      expect(await storage.entries.get('ns', 'k')).toBeUndefined(); // cached as absent
      await storage.entries.put('ns', 'k', bytes(1));
      expect((await storage.entries.get('ns', 'k'))?.value).toEqual(bytes(1));
      await storage.transaction(async (tx) => {
        await tx.entries.put('ns', 'k', bytes(2));
        expect((await tx.entries.get('ns', 'k'))?.value).toEqual(bytes(2));
      });
      expect((await storage.entries.get('ns', 'k'))?.value).toEqual(bytes(2));
      expect(await storage.entries.putIfAbsent('ns', 'new', bytes(3))).toBe(true);
      expect((await storage.entries.get('ns', 'new'))?.value).toEqual(bytes(3));
      await storage.entries.delete('ns', 'k');
      expect(await storage.entries.get('ns', 'k')).toBeUndefined();
    });

    it('keeps the committed answer when a transaction rolls back', async () => {
      const storage = make({ exclusive: true });
      await storage.migrate();
      await storage.entries.put('ns', 'k', bytes(1));
      expect((await storage.entries.get('ns', 'k'))?.value).toEqual(bytes(1));
      await expect(
        storage.transaction(async (tx) => {
          await tx.entries.put('ns', 'k', bytes(9));
          await tx.entries.delete('ns', 'other');
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      expect((await storage.entries.get('ns', 'k'))?.value).toEqual(bytes(1));
    });

    it('makes a read outside an open transaction wait for it, then see its writes', async () => {
      const storage = make({ exclusive: true });
      await storage.migrate();
      await storage.entries.put('ns', 'k', bytes(1));
      expect((await storage.entries.get('ns', 'k'))?.value).toEqual(bytes(1)); // cached
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const tx = storage.transaction(async (t) => {
        await t.entries.put('ns', 'k', bytes(2));
        await gate;
      });
      const outside = storage.entries.get('ns', 'k');
      release();
      await tx;
      expect((await outside)?.value).toEqual(bytes(2));
    });

    it('serves nothing from the cache once closed', async () => {
      const storage = make({ exclusive: true });
      await storage.migrate();
      await storage.entries.put('ns', 'k', bytes(1));
      expect((await storage.entries.get('ns', 'k'))?.value).toEqual(bytes(1));
      await storage.close();
      await expect(storage.entries.get('ns', 'k')).rejects.toThrow();
    });

    it('hands out copies: changing a returned value changes neither the cache nor the row', async () => {
      const storage = make({ exclusive: true });
      await storage.migrate();
      await storage.entries.put('ns', 'k', new Uint8Array([1, 2, 3]));
      const first = await storage.entries.get('ns', 'k');
      first!.value.fill(0);
      const second = await storage.entries.get('ns', 'k');
      second!.value.fill(0);
      expect((await storage.entries.get('ns', 'k'))?.value).toEqual(new Uint8Array([1, 2, 3]));
    });

    it('answers like the database after many writes and evictions (random operations, tiny cache)', async () => {
      const storage = make({ exclusive: true, cacheBytes: 2_000 });
      await storage.migrate();
      const model = new Map<string, number>();
      let seed = 7;
      const rand = (n: number) => {
        seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
        return seed % n;
      };
      for (let i = 0; i < 2_000; i++) {
        const key = `k${rand(40)}`;
        const op = rand(5);
        if (op === 0) {
          await storage.entries.put('ns', key, bytes(i & 0xff));
          model.set(key, i & 0xff);
        } else if (op === 1) {
          await storage.entries.delete('ns', key);
          model.delete(key);
        } else if (op === 2) {
          const commit = rand(2) === 0;
          await storage
            .transaction(async (tx) => {
              await tx.entries.put('ns', key, bytes((i + 1) & 0xff));
              if (!commit) throw new Error('rollback');
            })
            .catch(() => undefined);
          if (commit) model.set(key, (i + 1) & 0xff);
        } else {
          const got = await storage.entries.get('ns', key);
          expect(got?.value[0], key).toBe(model.get(key));
        }
      }
    });
  });

  // NORMAL as well as FULL: WAL commits reach the OS before they are acknowledged.
  // And exclusive, as the server runs: its WAL index lives in process memory and is rebuilt from the WAL.
  it.each(['full', 'normal', 'normal-exclusive'])(
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
