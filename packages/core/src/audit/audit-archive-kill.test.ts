import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { createStorage } from '@custos/storage';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KILL_TEST_DICTIONARY_SPAN } from '../test-support/audit-fixtures.js';
import { runAuditArchive } from './audit-archive-run.js';
import { verifyAuditArchives } from './audit-archive-verify.js';
import { removeStaleArchivePartials } from './audit-archive-write.js';
import { parseAuditLine } from './audit-line.js';
import { verifyAudit } from './audit-verify.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const child = fileURLToPath(new URL('../test-support/audit-archive-kill-child.ts', import.meta.url));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-audit-archive-kill-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the child until it kills itself at `step` of its archive run; returns its acknowledgements. */
async function runUntilKilled(dbPath: string, archiveDir: string, keyPath: string, step: string) {
  const proc = spawn(
    join(root, 'node_modules/.bin/vite-node'),
    ['--config', join(root, 'vitest.config.ts'), child, dbPath, archiveDir, keyPath, step],
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

/** Every record's request id by seq, from the archives and the online records after them. */
async function requestIds(archives: readonly string[], online: Awaited<ReturnType<typeof createStorage>>['audit']) {
  const ids = new Map<number, string>();
  let last = 0;
  for (const a of archives) {
    for (const line of gunzipSync(await readFile(a))
      .toString('utf8')
      .split('\n')) {
      const parsed = parseAuditLine(line);
      if (parsed?.kind !== 'record') continue;
      expect(ids.has(parsed.record.seq)).toBe(false);
      ids.set(parsed.record.seq, JSON.parse(parsed.record.event).request_id);
      last = parsed.record.seq;
    }
  }
  for (const r of await online.range(last + 1, 100_000)) {
    expect(ids.has(r.seq)).toBe(false);
    ids.set(r.seq, JSON.parse(r.event).request_id);
  }
  return ids;
}

describe('audit archival survives SIGKILL', () => {
  it.each(['archive-sealed', 'archive-written', 'journal-written', 'batch-deleted', 'dictionary-batch-deleted'])(
    'killed after %s under load: at restart the run is undone or resumed, nothing acknowledged is lost or doubled, all verifies',
    async (step) => {
      const dbPath = join(dir, 'custos.db');
      const archiveDir = join(dir, 'archive');
      const { mkdir } = await import('node:fs/promises');
      await mkdir(archiveDir);
      const keyPath = join(dir, 'signer.pem');
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      const signer = { keyId: 'kill-test', privateKey };
      const publicKeys = new Map([['kill-test', publicKey]]);

      const acks = await runUntilKilled(dbPath, archiveDir, keyPath, step);
      expect(acks.size).toBeGreaterThanOrEqual(300);
      const archives = async () =>
        (await readdir(archiveDir)).filter((n) => n.endsWith('.jsonl.gz')).map((n) => join(archiveDir, n));
      // Killed once the archive was complete but before it took its name: only its temporary file exists.
      const beforeName = step === 'archive-sealed';
      expect(await archives()).toHaveLength(beforeName ? 0 : 1);
      const partials = async () => (await readdir(archiveDir)).filter((n) => n.endsWith('.partial'));
      expect(await partials()).toHaveLength(beforeName ? 1 : 0);

      const storage = createStorage(`sqlite:${dbPath}`, { sqlite: { auditDictionarySpan: KILL_TEST_DICTIONARY_SPAN } });
      await storage.migrate();
      // Dictionary entries a finished run deletes: last used below the anchor less the span.
      const collectible = (anchor: number) => {
        const db = new Database(dbPath, { readonly: true });
        try {
          const sql = 'SELECT count(*) FROM audit_dictionary WHERE last_seq < ?';
          return Number(
            db
              .prepare(sql)
              .pluck()
              .get(anchor - KILL_TEST_DICTIONARY_SPAN),
          );
        } finally {
          db.close();
        }
      };
      try {
        const state = await storage.audit.archiveState();
        if (beforeName || step === 'archive-written') expect(state).toBe(undefined);
        else expect(state).toMatchObject({ status: 'archiving', archive: 1 });
        // Killed between dictionary batches: some entries gone, some still to go.
        if (step === 'dictionary-batch-deleted') expect(collectible(state!.checkpoint.seq)).toBeGreaterThan(0);
        // As the process left it: the online chain verifies; with the archive, one chain.
        expect(await verifyAudit(storage.audit, { publicKeys })).toMatchObject({ ok: true });
        if (state) {
          expect(await verifyAuditArchives(await archives(), { publicKeys, online: storage.audit })).toMatchObject({
            ok: true,
          });
        }

        // Restarted: the run is finished (or written again), and everything acknowledged is there once.
        // The same node restarted (same lease holder): it takes its lease back at once.
        const run = await runAuditArchive({
          store: storage.audit,
          signer,
          dir: archiveDir,
          before: new Date(),
          holder: 'kill-test-node',
        });
        if (!beforeName && step !== 'archive-written') expect(run.resumed).toBe('audit-archive-000001.jsonl.gz');
        const archived = await storage.audit.archiveState();
        expect(archived).toMatchObject({ status: 'archived' });
        expect(collectible(archived!.checkpoint.seq)).toBe(0);
        // The dead run's temporary file is left until it is older than a lease (another node may still be writing
        // one), then any run removes it.
        expect(await removeStaleArchivePartials(archiveDir, 0)).toBe(beforeName ? 1 : 0);
        expect(await partials()).toEqual([]);
        const all = await archives();
        const report = await verifyAuditArchives(all.sort(), { publicKeys, online: storage.audit });
        expect(report).toMatchObject({ ok: true });
        const ids = await requestIds(all, storage.audit);
        for (const [seq, id] of acks) expect(ids.get(seq)).toBe(id);
        const head = (await storage.audit.head())!;
        expect([...ids.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: head.seq }, (_, i) => i + 1));
      } finally {
        await storage.close();
      }
    },
    120_000,
  );
});
