import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStorage } from '@custos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestEvent } from '../test-support/audit-fixtures.js';
import { AuditFileLineReader, parseAuditFileLine } from './audit-compact-line.js';
import { AuditFileSink } from './audit-file-sink.js';
import { verifyAuditFiles } from './audit-files-verify.js';
import { AuditLog } from './audit-log.js';
import { verifyAudit } from './audit-verify.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const child = fileURLToPath(new URL('../test-support/audit-rotation-kill-child.ts', import.meta.url));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-audit-rotation-kill-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the child until it kills itself at `step` of its first rotation; returns its acknowledgements. */
async function runUntilKilled(dbPath: string, filePath: string, keyPath: string, step: string) {
  const proc = spawn(
    join(root, 'node_modules/.bin/vite-node'),
    ['--config', join(root, 'vitest.config.ts'), child, dbPath, filePath, keyPath, step],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const acks = new Map<number, string>();
  let killedAt: string | undefined;
  let buffered = '';
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  proc.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const [word, seq, id] = line.split(' ');
      if (word === 'ack') acks.set(Number(seq), id!);
      if (word === 'kill') killedAt = seq;
    }
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_c, s) => resolve(s)));
  clearTimeout(timer);
  expect(killedAt, stderr.slice(0, 500)).toBe(step);
  expect(signal).toBe('SIGKILL');
  return acks;
}

async function filesInOrder(filePath: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => /^audit-\d{8}T\d{6}Z-\d{6}\.jsonl$/.test(n)).sort();
  return [...names.map((n) => join(dir, n)), filePath];
}

describe('audit file rotation survives SIGKILL', () => {
  it.each(['anchor-written', 'renamed'])(
    'killed after %s: at restart the rotation is finished or undone, every acknowledged record is there once, the files verify',
    async (step) => {
      const dbPath = join(dir, 'custos.db');
      const filePath = join(dir, 'audit.jsonl');
      const keyPath = join(dir, 'signer.pem');
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      const signer = { keyId: 'kill-test', privateKey };
      const publicKeys = new Map([['kill-test', publicKey]]);

      const acks = await runUntilKilled(dbPath, filePath, keyPath, step);
      expect(acks.size).toBeGreaterThan(0);
      expect((await readdir(dir)).includes('audit.jsonl.next')).toBe(true);
      // Killed between the two renames: no file at the configured path at all.
      expect((await readdir(dir)).includes('audit.jsonl')).toBe(step === 'anchor-written');

      // Restart as the server would, rotating on.
      const storage = createStorage(`sqlite:${dbPath}`);
      await storage.migrate();
      const log = await AuditLog.open({
        store: storage.audit,
        signer,
        checkpointEvery: 200,
        sinks: [await AuditFileSink.open({ path: filePath, signer, rotation: { maxBytes: 32 * 1024 } })],
      });
      for (let i = 0; i < 300; i++) await log.record(requestEvent(-1 - i));
      await log.close();
      expect((await readdir(dir)).includes('audit.jsonl.next')).toBe(false);

      const head = (await storage.audit.head())!;
      const files = await filesInOrder(filePath);
      expect(files.length).toBeGreaterThanOrEqual(2);
      const inFiles = new Map<number, string>();
      const seqs: number[] = [];
      for (const f of files) {
        const reader = new AuditFileLineReader();
        for (const line of (await readFile(f, 'utf8')).split('\n')) {
          const fileLine = parseAuditFileLine(line);
          const parsed = fileLine && reader.read(fileLine);
          if (parsed?.kind !== 'record') continue;
          seqs.push(parsed.record.seq);
          inFiles.set(parsed.record.seq, JSON.parse(parsed.record.event).request_id);
        }
      }
      // Once each, in order, none missing.
      expect(seqs).toEqual(Array.from({ length: head.seq }, (_, i) => i + 1));
      for (const [seq, id] of acks) expect(inFiles.get(seq)).toBe(id);
      expect(await verifyAuditFiles(files, { publicKeys })).toMatchObject({ ok: true, lastSeq: head.seq });
      expect(await verifyAudit(storage.audit, { publicKeys })).toMatchObject({ ok: true, lastSeq: head.seq });
      await storage.close();
    },
  );
});
