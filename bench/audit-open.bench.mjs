// Audit start-up benchmark (issue 11): what opening the audit log costs on a
// large history. AuditLog.open checks, before signing anything, the last
// checkpoint, the records after it and the ends of the JSON-lines file
// against the database; it must not grow with the history. Built in-process
// on SQLite (the embedded default) with a fsynced JSON-lines file: a chain of
// AUDIT_EVENTS request events (default 1,000,000) sealed every 1,000 records,
// then timed: open on a cleanly closed log, open after a crash that left 999
// records unsealed, and, for scale, a full verification of the history.
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AUDIT_CHECKPOINT_GENESIS,
  AuditFileSink,
  AuditLog,
  auditCheckpointLink,
  canonicalJson,
  chainAuditRecords,
  formatAuditCheckpointLine,
  formatAuditRecordLine,
  signAuditCheckpoint,
  verifyAudit,
} from '@custos/core';
import { createStorage } from '@custos/storage';
import { fmt } from './bench-lib.mjs';

const EVENTS = Number(process.env.AUDIT_EVENTS ?? 1_000_000);
const EVERY = 1_000;
const dir = mkdtempSync(join(tmpdir(), 'custos-bench-audit-open-'));
const dbPath = join(dir, 'custos.db');
const filePath = join(dir, 'audit.jsonl');
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = { keyId: 'bench', privateKey };
const publicKeys = new Map([['bench', publicKey]]);

/** A request event shaped like the server's (about 400 bytes of canonical JSON). */
function event(i, t) {
  return canonicalJson({
    type: 'request',
    time: t,
    request_id: `0f1e2d3c-4b5a-4978-8695-${String(i).padStart(12, '0')}`,
    auth: { token_accessor: `acc_${(i % 97).toString(36).padStart(22, 'x')}`, policies: ['bench-read'] },
    request: {
      method: 'GET',
      route: '/v1/secrets/data/*',
      path: `kv/bench/item-${i % 1000}`,
      action: 'read',
      source_ip: '127.0.0.1',
    },
    decision: 'allow',
    status: 200,
    details: { phase: 'response' },
  });
}

const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

// 1. The history: records and checkpoints in the database, the same lines in the file.
let t0 = process.hrtime.bigint();
{
  const storage = createStorage(`sqlite:${dbPath}`, { sqlite: { synchronous: 'normal', exclusive: true } });
  await storage.migrate();
  const file = createWriteStream(filePath, { mode: 0o600 });
  let head = { seq: 0, hash: '0'.repeat(64) };
  let prev = AUDIT_CHECKPOINT_GENESIS;
  const start = Date.parse('2030-01-01T00:00:00.000Z');
  for (let from = 1; from <= EVENTS; from += EVERY) {
    const items = [];
    for (let i = from; i < from + EVERY && i <= EVENTS; i++) {
      const t = new Date(start + i).toISOString();
      items.push({ ts: t, event: event(i, t) });
    }
    const records = chainAuditRecords(head, items);
    await storage.audit.append(records);
    head = records.at(-1);
    const cp = signAuditCheckpoint(signer, head, prev, { every: EVERY, intervalMs: 10_000 });
    await storage.audit.appendCheckpoint(cp);
    prev = auditCheckpointLink(cp);
    if (!file.write(`${records.map(formatAuditRecordLine).join('\n')}\n${formatAuditCheckpointLine(cp)}\n`)) {
      await once(file, 'drain');
    }
  }
  file.end();
  await once(file, 'finish');
  await storage.close();
}
const buildSeconds = seconds(t0);
const fileMiB = statSync(filePath).size / 2 ** 20;
const dbMiB = statSync(dbPath).size / 2 ** 20;

/** Opens the log as the server does (exclusive SQLite, fsynced file sink) and returns the seconds it took. */
async function timedOpen() {
  const storage = createStorage(`sqlite:${dbPath}`, { sqlite: { synchronous: 'normal', exclusive: true } });
  await storage.migrate();
  const t = process.hrtime.bigint();
  const log = await AuditLog.open({
    store: storage.audit,
    signer,
    publicKeys,
    checkpointEvery: EVERY,
    sinks: [await AuditFileSink.open({ path: filePath })],
  });
  const s = seconds(t);
  await log.close();
  await storage.close();
  return s;
}

// 2. Open on a cleanly closed log (median of 5), then after a crash with an unsealed tail.
const clean = [];
for (let i = 0; i < 5; i++) clean.push(await timedOpen());
clean.sort((a, b) => a - b);
{
  // 999 records acknowledged, then the process dies before any checkpoint:
  // no close(), so the tail stays unsealed, as after SIGKILL.
  const storage = createStorage(`sqlite:${dbPath}`, { sqlite: { synchronous: 'normal', exclusive: true } });
  const log = await AuditLog.open({
    store: storage.audit,
    signer,
    checkpointEvery: EVERY,
    sinks: [await AuditFileSink.open({ path: filePath })],
  });
  await Promise.all(Array.from({ length: EVERY - 1 }, (_, i) => log.record({ type: 'system', kind: `bench_${i}` })));
  await storage.close();
}
const afterCrash = await timedOpen();

// 3. For scale: verifying the whole history, which start-up no longer does.
t0 = process.hrtime.bigint();
const full = await (async () => {
  const storage = createStorage(`sqlite:${dbPath}`);
  try {
    return await verifyAudit(storage.audit, { publicKeys });
  } finally {
    await storage.close();
  }
})();
const fullSeconds = seconds(t0);
rmSync(dir, { recursive: true, force: true });

console.log(`## Audit start-up (issue 11)

A chain of ${fmt(EVENTS)} request events (about ${fmt((fileMiB * 2 ** 20) / EVENTS)} bytes of JSON line per event), sealed every
${fmt(EVERY)} records by chained checkpoints, in SQLite (${fmt(dbMiB)} MiB) and in a JSON-lines file (${fmt(fileMiB)} MiB),
built in ${fmt(buildSeconds, 1)} s. \`AuditLog.open\` as the server runs it (exclusive SQLite, fsynced file sink):
it verifies the last checkpoint, the records after it and the ends of the file against the database before it
signs anything, so its cost does not grow with the history.

| Open | time |
| --- | ---: |
| cleanly closed log (median of 5; min ${fmt(clean[0] * 1000, 1)} ms, max ${fmt(clean.at(-1) * 1000, 1)} ms) | **${fmt(clean[2] * 1000, 1)} ms** |
| after a crash that left ${fmt(EVERY - 1)} records unsealed (checked, then sealed) | ${fmt(afterCrash * 1000, 1)} ms |
| for scale: verifying the whole history (\`verifyAudit\`, ${full.ok ? 'ok' : `FAILED: ${full.problem}`}) | ${fmt(fullSeconds, 1)} s |`);
