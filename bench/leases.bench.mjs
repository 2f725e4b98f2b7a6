// Lease benchmark (issue 4): revoking a task that holds 1,000 dynamic
// PostgreSQL users — custos in-process on SQLite, the engine against the real
// PostgreSQL (CUSTOS_BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).
// Measures issuing the 1,000 leases, then the revocation of the task until
// every one of its database users is gone.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustosNode, EgressPolicy, parseDuration } from '@custos/core';
import { createEngine } from '@custos/engines';
import { createStorage } from '@custos/storage';
import pg from 'pg';
import { fmt } from './bench-lib.mjs';

const LEASES = Number(process.env.BENCH_LEASES ?? 1_000);
const adminUrl = process.env.CUSTOS_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `custos_bench_${randomBytes(4).toString('hex')}`;
const admin = async (url, sql) => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
};
await admin(adminUrl, `CREATE DATABASE ${database}`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${database}`;

const dir = mkdtempSync(join(tmpdir(), 'custos-bench-leases-'));
const storage = createStorage(`sqlite:${join(dir, 'custos.db')}`, { sqlite: { synchronous: 'normal' } });
const node = new CustosNode({
  storage,
  seal: { type: 'dev', keyFile: join(dir, 'dev.key') },
  audit: {},
  engineFactory: createEngine,
  // The benchmark's database is local: allowed explicitly, as an operator would.
  egress: new EgressPolicy({ allow: [dbUrl.hostname] }),
});
await node.start();
const s = node.services();
await s.engines.write('pg', { type: 'postgres', url: dbUrl.toString() });
await s.engines.writeRole('pg', 'reader', { default_ttl_ms: parseDuration('30m'), max_ttl_ms: parseDuration('1h') });
const role = await s.roles.write('worker', { policies: [], max_ttl_ms: parseDuration('1h') });
const task = await s.tasks.start({ role, sub: 'bench', via: 'operator', ttlMs: parseDuration('50m') });
const owner = {
  name: `task:${task.task.id}`,
  task: { id: task.task.id, chain: task.task.chain, expiresAtMs: Date.parse(task.task.expire_time) },
};

const countUsers = async () =>
  Number((await admin(dbUrl.toString(), "SELECT count(*) AS n FROM pg_roles WHERE rolname LIKE 'custos%'")).rows[0].n);

const baseline = await countUsers(); // roles left by other runs are not ours
let t = process.hrtime.bigint();
let issued = 0;
const workers = Array.from({ length: 4 }, async () => {
  while (issued < LEASES) {
    issued++;
    await s.leases.issue('pg', 'reader', owner);
  }
});
await Promise.all(workers);
const issueSeconds = Number(process.hrtime.bigint() - t) / 1e9;
const before = (await countUsers()) - baseline;

t = process.hrtime.bigint();
await s.tasks.revoke(task.task.id, 'bench');
const revokeSeconds = Number(process.hrtime.bigint() - t) / 1e9;
const after = (await countUsers()) - baseline;
const failed = (await s.leases.list({ taskId: task.task.id, limit: 10_000 })).filter(
  (l) => l.state !== 'revoked',
).length;

await node.close();
rmSync(dir, { recursive: true, force: true });
await admin(adminUrl, `DROP DATABASE ${database} WITH (FORCE)`);

console.log(`## Revoking a task that holds ${fmt(LEASES)} dynamic PostgreSQL users (issue 4)

custos in-process (SQLite, durability "process"), the PostgreSQL engine against the local PostgreSQL server. One task
was given ${fmt(LEASES)} leases on \`pg/reader\` (4 concurrent requests); then the task was revoked.

| Step | s | per user |
| --- | ---: | ---: |
| issue ${fmt(LEASES)} leases (CREATE ROLE … VALID UNTIL, grants, lease recorded) | ${issueSeconds.toFixed(2)} | ${fmt((issueSeconds * 1000) / LEASES, 1)} ms |
| revoke the task: every user refused login, sessions terminated, privileges revoked, dropped | ${revokeSeconds.toFixed(2)} | ${fmt((revokeSeconds * 1000) / LEASES, 1)} ms |

This task's database users before the revocation: ${fmt(before)}; after: ${fmt(after)}; leases not in state revoked: ${failed}.
`);
