// Audit search benchmark: what one `GET /v1/audit/search` call costs in the
// store, in-process on SQLite (the embedded default) and on PostgreSQL when
// one is reachable (CUSTOS_TEST_POSTGRES_URL or 127.0.0.1:5432). A chain of
// AUDIT_EVENTS request events (default 200,000), then `searchAudit` timed:
// the worst case (a filter that matches nothing: the full 50,000-record scan
// bound), a selective filter found near the head, and a one-minute window
// deep in the history (narrowed by the ts index before scanning).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, chainAuditRecords, searchAudit } from '@custos/core';
import { createStorage } from '@custos/storage';
import pg from 'pg';
import { fmt } from './bench-lib.mjs';

const EVENTS = Number(process.env.AUDIT_EVENTS ?? 200_000);
const START = Date.parse('2030-01-01T00:00:00.000Z');
const STEP_MS = 10; // one event every 10 ms: 200,000 events span about 33 minutes

function event(i, t) {
  return canonicalJson({
    type: 'request',
    time: t,
    request_id: `0f1e2d3c-4b5a-4978-8695-${String(i).padStart(12, '0')}`,
    auth: {
      identity: `role:agent-${i % 50}`,
      task_chain: [`tsk_root_${i % 200}`, `tsk_child_${i % 1000}`],
      task_id: `tsk_child_${i % 1000}`,
      token_accessor: `acc_${(i % 97).toString(36).padStart(22, 'x')}`,
    },
    request: {
      method: 'GET',
      route: '/v1/secrets/data/*',
      path: `kv/bench/item-${i % 1000}`,
      action: 'read',
      source_ip: '127.0.0.1',
    },
    decision: i % 100 === 0 ? 'deny' : 'allow',
    status: i % 100 === 0 ? 403 : 200,
  });
}

async function fill(storage) {
  await storage.migrate();
  let head = { seq: 0, hash: '0'.repeat(64) };
  for (let from = 1; from <= EVENTS; from += 1_000) {
    const items = [];
    for (let i = from; i < from + 1_000 && i <= EVENTS; i++) {
      const t = new Date(START + i * STEP_MS).toISOString();
      items.push({ ts: t, event: event(i, t) });
    }
    const records = chainAuditRecords(head, items);
    await storage.audit.append(records);
    head = records.at(-1);
  }
}

/** Median of 5 runs, in ms, and the last answer. */
async function timed(fn) {
  const times = [];
  let result;
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    result = await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { ms: times[2], result };
}

async function measure(storage) {
  const { audit } = storage;
  const none = await timed(() => searchAudit(audit, { path: 'kv/nowhere/x' }, { limit: 100 }));
  const near = await timed(() =>
    searchAudit(audit, { task: 'tsk_root_100', decision: 'deny', path: 'kv/bench/*' }, { limit: 10 }),
  );
  const from = new Date(START + (EVENTS / 4) * STEP_MS).toISOString();
  const to = new Date(START + (EVENTS / 4) * STEP_MS + 60_000).toISOString();
  const window = await timed(() => searchAudit(audit, { since: from, until: to, decision: 'deny' }, { limit: 100 }));
  return [
    ['no match (the 50,000-record scan bound)', none],
    ['root task + deny + path prefix, 10 newest', near],
    ['one-minute window a quarter into the history, denies', window],
  ];
}

const sections = [];
const dir = mkdtempSync(join(tmpdir(), 'custos-bench-audit-search-'));
try {
  const storage = createStorage(`sqlite:${join(dir, 'custos.db')}`, { sqlite: { exclusive: true } });
  await fill(storage);
  sections.push(['SQLite', await measure(storage)]);
  await storage.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const pgUrl = process.env.CUSTOS_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `custos_bench_search_${process.pid}`;
const admin = new pg.Client({ connectionString: pgUrl });
const reachable = await admin.connect().then(
  () => true,
  () => false,
);
if (reachable) {
  await admin.query(`CREATE DATABASE ${dbName}`);
  try {
    const url = new URL(pgUrl);
    url.pathname = `/${dbName}`;
    const storage = createStorage(url.toString());
    await fill(storage);
    sections.push(['PostgreSQL', await measure(storage)]);
    await storage.close();
  } finally {
    await admin.query(`DROP DATABASE ${dbName}`);
    await admin.end();
  }
}

console.log(`## Audit search

\`searchAudit\` (\`GET /v1/audit/search\`) over a chain of ${fmt(EVENTS)} request events, in-process, median of 5
calls. Each call reads the store newest first in batches of 1,000 and looks at no more than 50,000 records, so
its worst case is fixed whatever the history's size. Machine shared with other work (2 cores): figures are
indicative.

| Store | Search | records returned | scanned through seq | complete | time |
| --- | --- | ---: | ---: | --- | ---: |
${sections
  .flatMap(([store, rows]) =>
    rows.map(
      ([name, { ms, result }]) =>
        `| ${store} | ${name} | ${fmt(result.records.length)} | ${fmt(result.scannedThroughSeq)} | ${result.complete} | **${fmt(ms, 1)} ms** |`,
    ),
  )
  .join('\n')}`);
