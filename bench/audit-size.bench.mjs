// Audit size benchmark (issue 16 #1): how many bytes each kind of audited
// operation adds to the audit trail, in each store, on a real custos server
// as `custos server --dev` runs it (SQLite and the JSON-lines file sink).
//
// Method. One server in its own process; each kind of operation is driven
// OPS times one after another over HTTP, and the stores are measured before
// and after each kind:
// - audit.jsonl: the file's size (every byte is audit: records, dictionary
//   and checkpoint lines).
// - SQLite: the bytes the audit tables and their indexes occupy in their
//   B-tree pages (SQLite's dbstat table: page size minus unused bytes, so a
//   half-filled last page does not count as full), read through a read-only
//   connection opened while the server is stopped (it holds the database
//   exclusively while it runs).
// The server is stopped and started again around each kind (same data
// directory); what one empty stop-and-start adds (its system events, its
// checkpoint, the coordinator task minted again) is measured too and
// subtracted. Per-kind figures are the deltas
// divided by OPS, so checkpoints and dictionary entries are included,
// amortised over the kind.
// Dynamic credentials need a PostgreSQL engine: a fresh database on the
// local PostgreSQL (CUSTOS_BENCH_POSTGRES_URL, default
// postgres://postgres@127.0.0.1:5432/postgres), dropped afterwards.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { fmt, freePort, root, waitFor } from './bench-lib.mjs';

const OPS = Number(process.env.BENCH_AUDIT_OPS ?? 400);
// This build's CLI, and optionally another build's (a checkout of main, built)
// measured first the same way, for before-and-after figures.
const cli = process.env.CUSTOS_BENCH_CLI ?? join(root, 'packages/cli/bin/custos.js');
const cliBefore = process.env.CUSTOS_BENCH_CLI_BEFORE;
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

/** Bytes per operation of each kind, for the custos CLI at `cli`. */
async function measureBuild(cli) {
  const dir = mkdtempSync(join(tmpdir(), 'custos-bench-audit-size-'));
  /** custos --dev on `dir` (kept between runs); `stop` waits for its exit. */
  async function start() {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [cli, 'server', '--dev', '--data', dir, '--listen', `127.0.0.1:${port}`, '--egress-allow', dbUrl.hostname],
      { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CUSTOS_LOG_LEVEL: 'warn' } },
    );
    const exited = new Promise((r) => child.once('exit', r));
    const addr = `http://127.0.0.1:${port}`;
    // Up to a minute: the machine is shared, and a start on a long chain checks its tail.
    await waitFor(`${addr}/v1/sys/health`, 600);
    return {
      addr,
      stop: async () => {
        child.kill('SIGTERM');
        await exited;
      },
    };
  }
  /** Both stores' audit bytes and record count, read while the server is stopped. */
  function measure() {
    const db = new Database(join(dir, 'custos.db'), { readonly: true, fileMustExist: true });
    try {
      const sqlite = db
        .prepare(
          "SELECT coalesce(sum(pgsize - unused), 0) AS n FROM dbstat WHERE name LIKE 'audit%' OR name LIKE 'sqlite_autoindex_audit%'",
        )
        .get().n;
      const records = db.prepare('SELECT coalesce(max(seq), 0) AS n FROM audit_log').get().n;
      return { file: statSync(join(dir, 'audit.jsonl')).size, sqlite, records };
    } finally {
      db.close();
    }
  }
  let server = await start();
  let rootToken = readFileSync(join(dir, 'root-token'), 'utf8').trim();
  const raw = (method, path, token, body) =>
    fetch(`${server.addr}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  const call = async (method, path, body) => {
    const r = await raw(method, path, rootToken, body);
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return r.status === 204 ? undefined : r.json();
  };

  try {
    await call('PUT', '/v1/secrets/data/kv/bench/enrichment-api', { data: { key: randomBytes(16).toString('hex') } });
    await call('PUT', '/v1/policies/bench', {
      policy:
        'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/bench/");\n' +
        'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");\n' +
        'permit(principal, action == Custos::Action::"issue", resource == Custos::Path::"pg/reader");',
    });
    await call('PUT', '/v1/roles/agent', { policies: ['bench'], max_ttl: '1h', max_depth: 4 });
    await call('PUT', '/v1/engines/pg', { type: 'postgres', url: dbUrl.toString() });
    await call('PUT', '/v1/engines/pg/roles/reader', { default_ttl: '30m', max_ttl: '1h' });
    // A dev server's tokens do not outlive it: the coordinator is minted again after each start.
    let coordinator = await call('POST', '/v1/roles/agent/tasks', { ttl: '50m' });
    const minted = [];
    const expect = async (response, status) => {
      if (response.status !== status) throw new Error(`${response.url}: ${response.status} ${await response.text()}`);
      return response.status === 204 ? undefined : response.json();
    };

    const kinds = [
      [
        'audited read (GET, task token)',
        () => raw('GET', '/v1/secrets/data/kv/bench/enrichment-api', coordinator.token).then((r) => expect(r, 200)),
      ],
      ['task mint (operator)', async () => minted.push(await call('POST', '/v1/roles/agent/tasks', { ttl: '30m' }))],
      [
        'delegation (task token)',
        () => raw('POST', '/v1/tasks/delegate', coordinator.token, { ttl: '10m' }).then((r) => expect(r, 200)),
      ],
      [
        'dynamic credential lease (PostgreSQL)',
        () => raw('POST', '/v1/creds/pg/reader', coordinator.token, { ttl: '20m' }).then((r) => expect(r, 200)),
      ],
      ['revoke (task tree)', () => call('POST', `/v1/tasks/${minted.pop().task_id}/revoke`, {})],
      [
        'denied request (403)',
        () => raw('GET', '/v1/secrets/data/kv/other/thing', coordinator.token).then((r) => expect(r, 403)),
      ],
    ];
    // Warm-up: every store has its first pages and the dictionary (where
    // there is one) its static entries before anything is counted.
    for (const [, op] of kinds.slice(0, 1)) for (let i = 0; i < 20; i++) await op();

    const cycle = async () => {
      await server.stop();
      const m = measure();
      server = await start();
      rootToken = readFileSync(join(dir, 'root-token'), 'utf8').trim();
      coordinator = await call('POST', '/v1/roles/agent/tasks', { ttl: '50m' });
      return m;
    };
    // What one stop-and-start costs on its own, subtracted below.
    const idle0 = await cycle();
    const idle1 = await cycle();
    const restart = {
      file: idle1.file - idle0.file,
      sqlite: idle1.sqlite - idle0.sqlite,
      records: idle1.records - idle0.records,
    };

    const rows = [];
    for (const [name, op] of kinds) {
      const before = await cycle();
      for (let i = 0; i < OPS; i++) await op();
      const after = await cycle();
      const per = (k) => (after[k] - before[k] - restart[k]) / OPS;
      const [events, file, sqlite] = [per('records'), per('file'), per('sqlite')];
      rows.push({ name, events, file, sqlite });
    }
    return rows;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  const before = cliBefore ? await measureBuild(cliBefore) : undefined;
  const after = await measureBuild(cli);
  const both = (r) => fmt(r.file + r.sqlite);
  const rows = after.map((r, i) => {
    const b = before?.[i];
    const was = b ? ` ${fmt(b.file)} | ${fmt(b.sqlite)} | ${both(b)} |` : '';
    return `| ${r.name} | ${fmt(r.events, 2)} |${was} ${fmt(r.file)} | ${fmt(r.sqlite)} | **${both(r)}** |`;
  });
  const head = before
    ? '| Operation | Records | before: audit.jsonl | before: SQLite | before: both | audit.jsonl | SQLite | Both stores |\n|---|---:|---:|---:|---:|---:|---:|---:|'
    : '| Operation | Records | audit.jsonl bytes | SQLite bytes | Both stores |\n|---|---:|---:|---:|---:|';
  console.log(`## Audit size per event kind (issue 16)

\`node bench/audit-size.bench.mjs\`: a \`custos server --dev\` (SQLite, the \`audit.jsonl\` file sink) in its own process;
each kind below driven ${fmt(OPS)} times over HTTP, one after another. Bytes are what the audit trail grew by, divided
by the number of operations (the server is stopped to be measured, around each kind; what a stop-and-start adds on its own is subtracted): \`audit.jsonl\` by its file size, SQLite by the bytes the audit tables and their indexes
occupy in their B-tree pages (\`dbstat\`: page size minus unused bytes). Checkpoints, system events and dictionary
entries are included, amortised over the kind that caused them. "Records" is the number of audit records per
operation (a read is one record, its response; a change has a request and a response record). Sizes do not
depend on the machine's speed (machine shared with other helpers).

${before ? `"Before" is the build at \`CUSTOS_BENCH_CLI_BEFORE\` (${process.env.CUSTOS_BENCH_BEFORE_LABEL ?? cliBefore}), every event stored in full; after, the compact stored form (docs/audit.md, "Stored form").\n\n` : ''}${head}
${rows.join('\n')}`);
} finally {
  await admin(adminUrl, `DROP DATABASE ${database} WITH (FORCE)`);
}
