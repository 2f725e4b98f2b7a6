import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStorage } from '@custos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestEvent } from '../test-support/audit-fixtures.js';
import { AuditFileSink } from './audit-file-sink.js';
import { verifyAuditFile } from './audit-file-verify.js';
import { AuditLog } from './audit-log.js';
import { verifyAudit } from './audit-verify.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const child = fileURLToPath(new URL('../test-support/audit-kill-child.ts', import.meta.url));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-audit-kill-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the writer child until it acknowledged at least `minAcks` events, then SIGKILLs it. */
async function runAndKill(dbPath: string, filePath: string, keyPath: string, startAt: number, minAcks: number) {
  const proc: ChildProcess = spawn(
    join(root, 'node_modules/.bin/vite-node'),
    ['--config', join(root, 'vitest.config.ts'), child, dbPath, filePath, keyPath, String(startAt)],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const acks = new Map<number, string>();
  let buffered = '';
  let stderr = '';
  proc.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`child too slow: ${acks.size} acks; ${stderr.slice(0, 500)}`)),
      60_000,
    );
    proc.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const [word, seq, id] = line.split(' ');
        if (word === 'ack') acks.set(Number(seq), id!);
      }
      if (acks.size >= minAcks) {
        clearTimeout(timer);
        // Killed mid-stream: writes are in flight at this moment.
        proc.kill('SIGKILL');
        resolve();
      }
    });
    proc.on('exit', () => {
      clearTimeout(timer);
      if (acks.size < minAcks) reject(new Error(`child exited early: ${stderr.slice(0, 500)}`));
    });
  });
  expect(await exited).toBe('SIGKILL');
  return acks;
}

describe('audit survives SIGKILL', () => {
  it('every acknowledged event is in the database and the file, and both verify after restart', async () => {
    const dbPath = join(dir, 'custos.db');
    const filePath = join(dir, 'audit.jsonl');
    const keyPath = join(dir, 'signer.pem');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const signer = { keyId: 'kill-test', privateKey };
    const publicKeys = new Map([['kill-test', publicKey]]);

    const first = await runAndKill(dbPath, filePath, keyPath, 0, 2_000);
    const second = await runAndKill(dbPath, filePath, keyPath, 1_000_000, 1_000);

    // Restart as the server would: open the log (seals the unsealed tail), write, close.
    const storage = createStorage(`sqlite:${dbPath}`);
    await storage.migrate();
    const log = await AuditLog.open({
      store: storage.audit,
      signer,
      sinks: [await AuditFileSink.open({ path: filePath })],
    });
    await log.record(requestEvent(-1));
    await log.close();

    const head = await storage.audit.head();
    for (const acks of [first, second]) {
      const seqs = [...acks.keys()];
      expect(head!.seq).toBeGreaterThan(Math.max(...seqs));
      const stored = new Map<number, string>();
      for (let from = Math.min(...seqs); from <= Math.max(...seqs); from += 1_000) {
        for (const r of await storage.audit.range(from, 1_000)) stored.set(r.seq, JSON.parse(r.event).request_id);
      }
      for (const [seq, id] of acks) expect(stored.get(seq)).toBe(id);
    }
    expect(await verifyAudit(storage.audit, { publicKeys })).toMatchObject({
      ok: true,
      lastSeq: head!.seq,
      lastCheckpointSeq: head!.seq,
    });
    expect(await verifyAuditFile(filePath, { publicKeys })).toMatchObject({ ok: true, lastSeq: head!.seq });
    await storage.close();
  });
});
