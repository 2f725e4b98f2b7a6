// Soak (issue 16, "Performance and soak"): SOAK_MINUTES (default 30) of mixed
// load on a real `custos server --dev` (SQLite, dev seal, audit to the
// database and the rotated JSON-lines file) with the server's archive schedule
// (`audit.archive: { every, keep_online, dir }`) running every
// SOAK_ARCHIVE_EVERY (default 5m; `off` runs without archival).
//
// The load comes from its own process (bench/support/soak-load.mjs), so the
// server's process only serves: audited secret reads by task tokens (most of
// the traffic), task mints (operator) and delegations (task tokens), task
// revocations, and dynamic PostgreSQL credentials (the engine against the
// local PostgreSQL, CUSTOS_BENCH_POSTGRES_URL, default
// postgres://postgres@127.0.0.1:5432/postgres, in a fresh database) whose
// leases are revoked at once.
//
// Each minute: requests/s by kind and in total, p50/p99, the server's CPU time
// per request, its RSS (VmRSS from /proc) and the disk use of the data and
// archive directories. At the start of each minute the mix pauses for
// SOAK_PROBE_SECONDS (default 3) while the same client, at the same
// concurrency, hits a bare fastify route in a separate process: the machine's
// own drift, beside custos's figures. At the end: the online chain verified
// by the running server (`custos audit verify`, from the last archive's
// checkpoint); then, server stopped, the archives by the CLI (`custos audit
// verify --file ARCHIVE… --public-key …`), the archives and the database's
// online tail as one chain (verifyAuditArchives with `online`), and the audit
// files as a sequence.
//
// Environment: SOAK_MINUTES, SOAK_ARCHIVE_EVERY (duration or `off`),
// SOAK_KEEP_ONLINE (default: SOAK_ARCHIVE_EVERY), SOAK_ARCHIVE_SPREAD (default: the server's), SOAK_ROTATE_EVERY (the audit
// file's rotate_every, default: SOAK_ARCHIVE_EVERY; `off`: no rotation),
// SOAK_CONCURRENCY (default 16), SOAK_MIX (default read=88,mint=4,delegate=4,revoke=4),
// SOAK_CREDS_WORKERS (default 2: dynamic credentials in a lane of their own),
// SOAK_WARMUP_SECONDS (default 15),
// SOAK_PROBE_SECONDS (default 3), SOAK_AUDIT_FILE (`off`: database audit only), SOAK_SERVER_NODE_ARGS,
// SOAK_PROFILE (default on; `off`: the server runs without V8's sampling
// profiler, and the report has no split of its main thread's time).
import { fork, spawn, spawnSync } from 'node:child_process';
import { createPublicKey, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { auditKeyId, verifyAuditArchives } from '@custos/core';
import { createStorage } from '@custos/storage';
import Database from 'better-sqlite3';
import pg from 'pg';
import { cpuSeconds, fmt, freePort, root, startBareRoute, waitFor } from './bench-lib.mjs';
import { profileByWindow } from './support/soak-profile.mjs';

const parseMs = (text) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(String(text).trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2]];
};
const MINUTES = Number(process.env.SOAK_MINUTES ?? 30);
const ARCHIVE_EVERY = process.env.SOAK_ARCHIVE_EVERY ?? '5m';
const ARCHIVE = ARCHIVE_EVERY !== 'off';
const KEEP_ONLINE = process.env.SOAK_KEEP_ONLINE ?? ARCHIVE_EVERY;
// `audit.archive.spread` (unset: the server's default, 80 % of every).
const ARCHIVE_SPREAD = process.env.SOAK_ARCHIVE_SPREAD;
const ROTATE_EVERY = process.env.SOAK_ROTATE_EVERY ?? (ARCHIVE ? ARCHIVE_EVERY : 'off');
// `off`: the server audits to its database only (no JSON-lines file). With a file, each archive run removes the
// rotated files it wholly holds (docs/audit.md, "The online files"), so the data directory stays bounded either way.
const AUDIT_FILE = process.env.SOAK_AUDIT_FILE !== 'off';
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 16);
const CREDS_WORKERS = Number(process.env.SOAK_CREDS_WORKERS ?? 2);
const PROBE_MS = Number(process.env.SOAK_PROBE_SECONDS ?? 3) * 1000;
const WARMUP_MS = Number(process.env.SOAK_WARMUP_SECONDS ?? 15) * 1000;
const MIX = Object.fromEntries(
  (process.env.SOAK_MIX ?? 'read=88,mint=4,delegate=4,revoke=4').split(',').map((kv) => {
    const [k, v] = kv.split('=');
    return [k.trim(), Number(v)];
  }),
);
// The server under V8's sampling profiler, so each minute's main-thread time
// splits into archival's own work and the rest (bench/support/soak-profile.mjs).
const PROFILE = process.env.SOAK_PROFILE !== 'off';
const MINUTE_MS = 60_000;
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
const log = (s) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const mib = (b) => (b / 2 ** 20).toFixed(1);

// --- PostgreSQL: a fresh database for the engine -------------------------
const adminUrl = process.env.CUSTOS_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `custos_soak_${randomBytes(4).toString('hex')}`;
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

// --- the server -------------------------------------------------------------
const base = mkdtempSync(join(tmpdir(), 'custos-soak-'));
const dataDir = join(base, 'data');
const archiveDir = join(base, 'archive');
const profileDir = join(base, 'profile');
mkdirSync(dataDir);
mkdirSync(archiveDir);
const auditConfig = {
  file: AUDIT_FILE ? { path: 'audit.jsonl', ...(ROTATE_EVERY !== 'off' ? { rotate_every: ROTATE_EVERY } : {}) } : null,
  ...(ARCHIVE
    ? {
        archive: {
          every: ARCHIVE_EVERY,
          keep_online: KEEP_ONLINE,
          ...(ARCHIVE_SPREAD ? { spread: ARCHIVE_SPREAD } : {}),
          dir: archiveDir,
        },
      }
    : {}),
};
const configFile = join(base, 'custos.json');
writeFileSync(configFile, JSON.stringify({ audit: auditConfig }, null, 2));
const port = await freePort();
const addr = `http://127.0.0.1:${port}`;
const cli = join(root, 'packages/cli/bin/custos.js');
const server = spawn(
  process.execPath,
  [
    // SOAK_SERVER_NODE_ARGS: extra Node.js flags for the server (e.g. `--max-old-space-size=…`; the profiler is SOAK_PROFILE's).
    ...(process.env.SOAK_SERVER_NODE_ARGS ? process.env.SOAK_SERVER_NODE_ARGS.split(' ').filter(Boolean) : []),
    ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    cli,
    'server',
    '--dev',
    '--data',
    dataDir,
    '--listen',
    `127.0.0.1:${port}`,
    '--config',
    configFile,
    '--egress-allow',
    dbUrl.hostname,
  ],
  { cwd: base, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CUSTOS_LOG_LEVEL: 'warn' } },
);
const serverExited = new Promise((r) => server.once('exit', (code, signal) => r({ code, signal })));
let serverDown = false;
let stopping = false;
server.once('exit', (code, signal) => {
  serverDown = true;
  if (!stopping) log(`server exited unexpectedly: code ${code} signal ${signal}`);
});
// Whatever happens to this process, its children go with it.
const children = [server];
let cleaned = false;
process.on('exit', () => {
  for (const c of children) {
    try {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    } catch {} // already gone
  }
  if (cleaned) return;
  rmSync(base, { recursive: true, force: true });
  // A failed run still drops its database (synchronously: this is the exit handler).
  spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import pg from 'pg'; const c = new pg.Client({ connectionString: ${JSON.stringify(adminUrl)} }); await c.connect(); await c.query('DROP DATABASE IF EXISTS ${database} WITH (FORCE)'); await c.end();`,
    ],
    { cwd: root, stdio: 'ignore', timeout: 30_000 },
  );
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));
await waitFor(`${addr}/v1/sys/health`, 600);
const rootToken = readFileSync(join(dataDir, 'root-token'), 'utf8').trim();
const call = async (method, path, body, token = rootToken) => {
  const r = await fetch(`${addr}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.status === 204 ? undefined : r.json();
};

await call('PUT', '/v1/secrets/data/kv/bench/db', {
  data: { username: 'bench-user', password: `fake-${randomBytes(12).toString('hex')}` },
});
await call('PUT', '/v1/policies/soak', {
  policy:
    'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/bench/");\n' +
    'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");\n' +
    'permit(principal, action == Custos::Action::"issue", resource == Custos::Path::"pg/reader");',
});
const taskTtlMinutes = MINUTES + 30;
await call('PUT', '/v1/roles/agent', { policies: ['soak'], max_ttl: `${taskTtlMinutes + 10}m`, max_depth: 4 });
await call('PUT', '/v1/engines/pg', { type: 'postgres', url: dbUrl.toString() });
await call('PUT', '/v1/engines/pg/roles/reader', { default_ttl: '10m', max_ttl: '1h' });
// The readers: a few long-lived tasks (never revoked by the load, so reads never race a revocation).
const coordinators = [];
for (let i = 0; i < 8; i++) {
  const t = await call('POST', '/v1/roles/agent/tasks', { ttl: `${taskTtlMinutes}m` });
  coordinators.push({ id: t.task_id, token: t.token });
}

const bare = await startBareRoute();
children.push({ kill: (s) => process.kill(bare.pid, s), exitCode: null, signalCode: null });

// --- measurements -----------------------------------------------------------
const rssBytes = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
};
/** Apparent bytes of every file under `dir` (SQLite, its WAL, audit files, archives). */
const bytesUnder = (dir) => {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    try {
      total += e.isDirectory() ? bytesUnder(p) : statSync(p).size;
    } catch {} // removed while listed (a rotation, an archive run)
  }
  return total;
};
/** The data directory split: the database (SQLite and its WAL) and the audit files. */
const dataSplit = () => {
  let db = 0;
  let audit = 0;
  for (const f of readdirSync(dataDir)) {
    try {
      if (f.startsWith('custos.db')) db += statSync(join(dataDir, f)).size;
      else if (/^audit.*\.jsonl/.test(f)) audit += statSync(join(dataDir, f)).size;
    } catch {}
  }
  return { db, audit };
};
// Complete archives only: a run's temporary file is `<name>.<random>.partial` until it takes its name.
const archiveFiles = () =>
  readdirSync(archiveDir)
    .filter((f) => f.endsWith('.jsonl.gz'))
    .sort();
// The last seq each archive holds, from its signed manifest (the file's last
// line); read once per archive (a file still being written is read next time).
const archiveLastSeq = new Map();
const archivedThrough = () => {
  let through = 0;
  for (const f of archiveFiles()) {
    if (!archiveLastSeq.has(f)) {
      try {
        // Only the last line is decoded: the archive's text is hundreds of MB, and this process shares the cores.
        const text = gunzipSync(readFileSync(join(archiveDir, f)));
        const end = text.at(-1) === 0x0a ? text.length - 1 : text.length;
        const manifest = JSON.parse(text.subarray(text.lastIndexOf(0x0a, end - 1) + 1, end).toString('utf8'));
        if (manifest.kind === 'archive-manifest') archiveLastSeq.set(f, manifest.lastSeq);
      } catch {} // not complete yet
    }
    through = Math.max(through, archiveLastSeq.get(f) ?? 0);
  }
  return through;
};
/** The chain's head (one record through the API). */
const headSeq = async () => (await call('GET', '/v1/audit/tail?n=1')).records.at(-1)?.seq ?? 0;
const loadavg = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');

// --- the load generator -----------------------------------------------------
const loader = fork(join(root, 'bench/support/soak-load.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
children.push(loader);
const replies = [];
const waiting = [];
loader.on('message', (m) => {
  const w = waiting.shift();
  if (w) w(m);
  else replies.push(m);
});
const ask = (msg) =>
  new Promise((resolve) => {
    waiting.push(resolve);
    loader.send(msg);
  });
const sleepUntil = (t) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

const loadStart = loadavg();
const startedAt = new Date();
log(`server pid ${server.pid} at ${addr}; data ${dataDir}; archive ${ARCHIVE ? `every ${ARCHIVE_EVERY}` : 'off'}`);
await ask({
  cmd: 'start',
  config: { addr, rootToken, coordinators, concurrency: CONCURRENCY, credsWorkers: CREDS_WORKERS, mix: MIX },
});
log(`warm-up ${WARMUP_MS / 1000} s`);
await sleepUntil(Date.now() + WARMUP_MS);
// The bare route warmed up too (JIT, connections), so minute 1's probe is not a cold start.
await ask({ cmd: 'probe', url: bare.url, ms: PROBE_MS });
await ask({ cmd: 'collect' }); // the warm-up is not counted

const minutes = [];
let t = Date.now();
for (let m = 1; m <= MINUTES && !serverDown; m++) {
  const end = t + MINUTE_MS;
  const windowStart = monotonicUs();
  const bareProbe = (await ask({ cmd: 'probe', url: bare.url, ms: PROBE_MS })).result;
  const cpu0 = cpuSeconds(server.pid);
  let rssMax = 0;
  while (Date.now() < end && !serverDown) {
    rssMax = Math.max(rssMax, rssBytes());
    await sleepUntil(Math.min(end, Date.now() + 5_000));
  }
  if (serverDown) break;
  const load = (await ask({ cmd: 'collect' })).result;
  const cpu = cpuSeconds(server.pid) - cpu0;
  const requests = load.total.rps * load.seconds;
  const rss = rssBytes();
  const row = {
    minute: m,
    window: [windowStart, monotonicUs()],
    requests,
    bare: bareProbe,
    load,
    cpuUsPerReq: requests > 0 ? (cpu * 1e6) / requests : 0,
    rss,
    rssMax: Math.max(rssMax, rss),
    dataBytes: bytesUnder(dataDir),
    ...dataSplit(),
    head: await headSeq(),
    archivedThrough: archivedThrough(),
    archiveBytes: bytesUnder(archiveDir),
    archives: archiveFiles().length,
  };
  minutes.push(row);
  log(
    `minute ${m}: ${fmt(load.total.rps)} req/s (bare ${fmt(bareProbe.rps)}), p99 ${fmt(load.total.p99, 1)} ms, ` +
      `online records ${fmt(row.head - row.archivedThrough)}, RSS ${mib(rss)} MiB, data ${mib(row.dataBytes)} MiB (db ${mib(row.db)}, audit files ${mib(row.audit)}), archive ${mib(row.archiveBytes)} MiB (${row.archives} files), ` +
      `errors ${Object.values(load.kinds).reduce((a, k) => a + k.failed, 0)}`,
  );
  t = end;
}
const stopped = (await ask({ cmd: 'stop' })).result;
const loadEnd = loadavg();

// --- end: leases, verification ----------------------------------------------
// Leases the load issued and had not yet revoked when it stopped (in flight):
// revoked now, so no database user outlives the run.
let leftover = 0;
if (!serverDown) {
  const active = await call('GET', '/v1/leases?state=active&limit=1000');
  for (const l of active.leases ?? active.data ?? []) {
    await call('POST', `/v1/leases/${l.lease_id ?? l.id}/revoke`, {});
    leftover++;
  }
}

const runCli = (args, env = {}) =>
  new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: base,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => {
      let report;
      try {
        report = JSON.parse(out);
      } catch {}
      resolve({ code, report, out: out.trim(), err: err.trim(), seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    });
  });

// The online chain, by the running server (it starts at the last archive's anchor).
log('verifying online');
const online = serverDown
  ? { code: -1, err: 'server down' }
  : // Two million online records take longer than the CLI's default 30 s answer time.
    await runCli(['audit', 'verify', '--json'], { CUSTOS_ADDR: addr, CUSTOS_TOKEN: rootToken, CUSTOS_TIMEOUT: '10m' });
const keys = serverDown ? { keys: [] } : await (await fetch(`${addr}/v1/audit/public-keys`)).json();
const keyFiles = keys.keys.map((k, i) => {
  const p = join(base, `audit-key-${i}.pem`);
  writeFileSync(p, k.public_key_pem);
  return p;
});

stopping = true;
server.kill('SIGTERM');
// Shut down with an archive run in progress (paced, it is stopped at its next batch): the exit must be clean.
const shutdown = await serverExited;
const shutdownLine =
  shutdown.code === 0
    ? 'Server shutdown (SIGTERM after the load): clean, exit code 0'
    : `Server shutdown (SIGTERM after the load): **failed**, exit code ${shutdown.code} signal ${shutdown.signal}`;
log(shutdownLine);
bare.stop();

// The profile is written as the server exits: each minute's main-thread time, and archival's share of it.
const profileFile = PROFILE ? readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile')) : undefined;
if (profileFile) {
  const split = profileByWindow(
    join(profileDir, profileFile),
    minutes.map((r) => r.window),
  );
  for (const [i, r] of minutes.entries()) Object.assign(r, split[i]);
} else if (PROFILE) log('no CPU profile from the server: the report has no split of its main thread');

// Offline, the server stopped. (1) The archives as a chain of their own, by the
// CLI (`custos audit verify --file ARCHIVE… --public-key …`). (2) End to end:
// every archive in order and then the database's records after the last one,
// as one chain (verifyAuditArchives with the store as the online tail — what
// the CLI's two commands check in two halves). (3) The audit files (the
// rotated ones archival has not yet removed, and audit.jsonl) as a sequence,
// from the first one's anchor.
const archives = archiveFiles().map((f) => join(archiveDir, f));
const publicKeys = new Map(
  keys.keys.map((k) => {
    const key = createPublicKey(k.public_key_pem);
    return [auditKeyId(key), key];
  }),
);
let archived = { report: undefined, code: 0, out: 'no archive written' };
if (archives.length > 0) {
  log(`verifying ${archives.length} archives (CLI)`);
  archived = await runCli([
    'audit',
    'verify',
    '--json',
    ...archives.flatMap((f) => ['--file', f]),
    ...keyFiles.flatMap((k) => ['--public-key', k]),
  ]);
}
log(`verifying ${archives.length} archives and the database's online tail as one chain`);
const endToEnd = await (async () => {
  const t0 = process.hrtime.bigint();
  const storage = createStorage(`sqlite:${join(dataDir, 'custos.db')}`);
  try {
    await storage.migrate();
    const report = await verifyAuditArchives(archives, { publicKeys, online: storage.audit });
    return { code: 0, report, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  } catch (e) {
    return { code: 1, err: String(e?.message ?? e) };
  } finally {
    await storage.close();
  }
})();
let files = { report: undefined, code: 0, out: 'no audit file (SOAK_AUDIT_FILE=off)' };
if (AUDIT_FILE) {
  log('verifying the audit files');
  files = await runCli([
    'audit',
    'verify',
    '--json',
    '--file',
    dataDir,
    ...keyFiles.flatMap((k) => ['--public-key', k]),
  ]);
}
// What the database file holds at the end (the server stopped): its bytes by
// table (indexes counted with their table) and its free pages. The file never
// shrinks, so its size is a high-water mark; this says what fills it — the
// audit tables, or the tasks and leases the load creates (kept for their own
// retention).
const dbComposition = (() => {
  try {
    const db = new Database(join(dataDir, 'custos.db'), { readonly: true });
    try {
      const pageSize = db.pragma('page_size', { simple: true });
      const free = db.pragma('freelist_count', { simple: true }) * pageSize;
      const total = db.pragma('page_count', { simple: true }) * pageSize;
      const tables = db
        .prepare(
          `SELECT coalesce(m.tbl_name, s.name) AS name, sum(s.pgsize) AS bytes
             FROM dbstat s LEFT JOIN sqlite_master m ON m.name = s.name
            GROUP BY 1 ORDER BY 2 DESC`,
        )
        .all();
      const top = tables.slice(0, 6).map((t) => `${t.name} ${mib(t.bytes)}`);
      const audit = tables.filter((t) => t.name.startsWith('audit')).reduce((a, t) => a + t.bytes, 0);
      // Rows, against the tasks the load created: the dictionary holds about one
      // entry per task (its auth), and archival deletes those of archived records.
      const rows = (table) => fmt(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get());
      const created = minutes.reduce(
        (a, r) => a + ['mint', 'delegate'].reduce((b, k) => b + (r.load.kinds[k]?.rps ?? 0) * r.load.seconds, 0),
        0,
      );
      return `${mib(total)} MiB in pages, ${mib(free)} MiB of them free; audit tables ${mib(audit)} MiB, the rest ${mib(total - free - audit)} MiB (largest: ${top.join(', ')} MiB); ${rows('audit_dictionary')} audit dictionary entries and ${rows('entries')} rows in entries, after ${fmt(created)} tasks minted or delegated over the run`;
    } finally {
      db.close();
    }
  } catch (e) {
    return `not read (${String(e?.message ?? e)})`;
  }
})();
const finalData = bytesUnder(dataDir);
const finalArchive = bytesUnder(archiveDir);
rmSync(base, { recursive: true, force: true });
await admin(adminUrl, `DROP DATABASE ${database} WITH (FORCE)`);
cleaned = true;

// --- report -----------------------------------------------------------------
const kinds = [...new Set(minutes.flatMap((r) => Object.keys(r.load.kinds)))].sort((a, b) =>
  a === 'read' ? -1 : b === 'read' ? 1 : a.localeCompare(b),
);
const spread = (xs) => {
  if (xs.length === 0) return { min: 0, max: 0, median: 0, pct: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const median = s[Math.floor(s.length / 2)];
  return { min: s[0], max: s[s.length - 1], median, pct: median > 0 ? ((s[s.length - 1] - s[0]) / median) * 100 : 0 };
};
const total = spread(minutes.map((r) => r.load.total.rps));
const bareSpread = spread(minutes.map((r) => r.bare.rps));
const ratio = spread(minutes.map((r) => r.load.total.rps / r.bare.rps));
const p99 = spread(minutes.map((r) => r.load.total.p99));
const readP99 = spread(minutes.map((r) => r.load.kinds.read?.p99 ?? 0));
const rss = spread(minutes.map((r) => r.rss));
const cpuUs = spread(minutes.map((r) => r.cpuUsPerReq));
const data = spread(minutes.map((r) => r.dataBytes));
const dbSpread = spread(minutes.map((r) => r.db));
const errors = minutes.reduce((a, r) => a + Object.values(r.load.kinds).reduce((b, k) => b + k.failed, 0), 0);
// From the profile: the main thread's busy time per request, archival's own part of it, and the rest.
const profiled = minutes.length > 0 && minutes.every((r) => r.busyMs !== undefined && r.requests > 0);
const mainUs = (r) => (r.busyMs * 1000) / r.requests;
const archivalUs = (r) => (r.archivalMs * 1000) / r.requests;
const restUs = (r) => mainUs(r) - archivalUs(r);
// Flat or not: the minutes before archival first touched the disk (its first
// archive's bytes, temporary file included) against the minutes from then on,
// by their medians.
const firstArchiveMinute = minutes.find((r) => r.archiveBytes > 0)?.minute;
const phase = (label, rows) => {
  if (rows.length === 0) return undefined;
  const med = (pick) => spread(rows.map(pick)).median;
  return `${label}: custos ${fmt(med((r) => r.load.total.rps))} req/s, bare ${fmt(med((r) => r.bare.rps))} req/s, custos ÷ bare ${med((r) => r.load.total.rps / r.bare.rps).toFixed(3)}, CPU ${fmt(med((r) => r.cpuUsPerReq))} µs/req, p99 ${fmt(
    med((r) => r.load.total.p99),
    1,
  )} ms, read p99 ${fmt(
    med((r) => r.load.kinds.read?.p99 ?? 0),
    1,
  )} ms${
    profiled
      ? `, main thread ${fmt(med(mainUs))} µs/req (archival ${fmt(med(archivalUs), 1)}, the rest ${fmt(med(restUs))})`
      : ''
  }`;
};
// What the profile says of the minutes with archival: its share of the main
// thread, and whether the rest of the main thread's work per request moved.
const archivalShare = () => {
  const before = minutes.filter((r) => r.minute < firstArchiveMinute);
  const during = minutes.filter((r) => r.minute >= firstArchiveMinute && r.archivalMs > 0);
  const share = spread(during.map((r) => (r.archivalMs / r.busyMs) * 100));
  const total = minutes.reduce((a, r) => a + r.archivalMs, 0);
  const requests = minutes.filter((r) => r.minute >= firstArchiveMinute).reduce((a, r) => a + r.requests, 0);
  return `${fmt(total / 1000, 1)} s of the server's main thread over the run, ${fmt((total * 1000) / requests, 1)} µs per request served from minute ${firstArchiveMinute} on; in the ${during.length} minutes it ran, ${share.min.toFixed(1)}–${share.max.toFixed(1)} % of the busy main thread (median ${share.median.toFixed(1)} %, ${fmt(spread(during.map(archivalUs)).median, 1)} µs/req). The main thread's other work per request, median: ${fmt(spread(before.map(restUs)).median)} µs before archival, ${fmt(spread(during.map(restUs)).median)} µs in the minutes archival ran`;
};
const phases = firstArchiveMinute
  ? [
      phase(
        `before archival (minutes 1–${firstArchiveMinute - 1})`,
        minutes.filter((r) => r.minute < firstArchiveMinute),
      ),
      phase(
        `with archival (minutes ${firstArchiveMinute}–${minutes.length})`,
        minutes.filter((r) => r.minute >= firstArchiveMinute),
      ),
    ].filter(Boolean)
  : [];
const statuses = {};
for (const r of minutes)
  for (const k of Object.values(r.load.kinds))
    for (const [s, n] of Object.entries(k.statuses)) statuses[s] = (statuses[s] ?? 0) + n;
const allRequests = minutes.reduce((a, r) => a + r.requests, 0);

// Bounded disk: once archival has had time to reach its steady state (keep_online
// plus one archive period plus the run's spread), what is online must stop growing
// beyond the load: the largest size in the second half of that steady stretch is
// compared with the first half's, allowing for the load's change between them.
let bounded = 'not judged (archival off)';
if (ARCHIVE) {
  // A paced run deletes up to its spread after it starts.
  const spreadMs = ARCHIVE_SPREAD ? parseMs(ARCHIVE_SPREAD) : 0.8 * parseMs(ARCHIVE_EVERY);
  const settle = Math.ceil((parseMs(KEEP_ONLINE) + parseMs(ARCHIVE_EVERY) + spreadMs) / MINUTE_MS);
  const steady = minutes.filter((r) => r.minute > settle);
  if (steady.length < 2) {
    bounded = `not judged (${minutes.length} minutes; archival reaches its steady state after about ${settle})`;
  } else {
    const half = Math.floor(steady.length / 2);
    // What is online follows the load's rate (a retention window holds that
    // many minutes of it), and the rate drifts with the machine: a peak may
    // grow with the load, and at most 10 % beyond it. A falling load earns no
    // less than +10 % (the database never shrinks, it keeps its high-water mark).
    const requestsIn = (rows) => rows.reduce((a, r) => a + r.requests, 0);
    const loadRatio = requestsIn(steady.slice(half)) / requestsIn(steady.slice(0, half));
    const loadChange = (loadRatio - 1) * 100;
    const judge = (label, pick, show) => {
      const first = Math.max(...steady.slice(0, half).map(pick));
      const second = Math.max(...steady.slice(half).map(pick));
      const growth = first > 0 ? ((second - first) / first) * 100 : 0;
      const beyondLoad = first > 0 ? (second / (first * Math.max(1, loadRatio)) - 1) * 100 : 0;
      const sign = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)} %`;
      return `${beyondLoad <= 10 ? '**bounded**' : '**growing**'}: ${label} at most ${show(first)} in minutes ${steady[0].minute}–${steady[half - 1].minute}, at most ${show(second)} in minutes ${steady[half].minute}–${steady[steady.length - 1].minute} (${sign(growth)}${loadRatio > 1 ? `, ${sign(beyondLoad)} beyond the load's growth` : ''})`;
    };
    const inMib = (b) => `${mib(b)} MiB`;
    // What the retention setting bounds is a time window, not bytes: the
    // records online must never exceed those written in the last keep_online
    // + every + spread (plus a minute for a run to start and these samples to
    // fall). The halves below judge bytes, which follow the load's rate.
    const windowMinutes = settle + 1;
    const headAt = (m) => (m <= 0 ? 0 : (minutes.find((r) => r.minute === m)?.head ?? 0));
    const worst = steady
      .map((r) => ({
        minute: r.minute,
        online: r.head - r.archivedThrough,
        written: r.head - headAt(r.minute - windowMinutes),
      }))
      .reduce((a, b) => (b.online / b.written > a.online / a.written ? b : a));
    const share = (worst.online / worst.written) * 100;
    // The files' own window: the current file and the rotated ones no archive
    // wholly holds yet, so at most one rotation period more than the records'.
    // Against it, the most the files grew in any one minute (a minute in which
    // files were removed grows less, not more): the files must never hold more
    // than that many minutes of it.
    const fileWindow = () => {
      const rotateMinutes = Math.ceil(parseMs(ROTATE_EVERY) / MINUTE_MS);
      const minutesHeld = windowMinutes + rotateMinutes;
      const perMinute = Math.max(...minutes.slice(1).map((r, i) => r.audit - minutes[i].audit));
      const peak = steady.reduce((a, r) => (r.audit > a.audit ? r : a));
      return `${peak.audit <= minutesHeld * perMinute ? '**bounded by the retention setting**' : '**beyond the retention setting**'}: the audit files at most ${inMib(peak.audit)} (minute ${peak.minute}), against ${minutesHeld} minutes (the records' window and one rotation period) of the most they grew in a minute (${inMib(perMinute)}): ${inMib(minutesHeld * perMinute)}`;
    };
    bounded = [
      `${share <= 100 ? '**bounded by the retention setting**' : '**beyond the retention setting**'}: online audit records (head seq − last archived seq) at most ${share.toFixed(1)} % of the records written in the last ${windowMinutes} minutes (keep_online + every + spread, and a minute), at minute ${worst.minute} (${fmt(worst.online)} of ${fmt(worst.written)})`,
      judge('online audit records (head seq − last archived seq)', (r) => r.head - r.archivedThrough, fmt),
      `${judge('the database (SQLite and WAL)', (r) => r.db, inMib)} — it also holds the tasks and leases the load creates (revoked tasks are kept for their retention), not only audit records`,
      ...(AUDIT_FILE && ROTATE_EVERY !== 'off' ? [fileWindow()] : []),
      AUDIT_FILE
        ? `${judge('the audit files', (r) => r.audit, inMib)} — each archive run deletes the rotated audit files the archives wholly hold (docs/audit.md, "The online files"); the current file and up to one rotation period before the last archive stay, so a rotated file kept one period longer in one half reads as growth here`
        : judge('the whole data directory', (r) => r.dataBytes, inMib),
    ].join('; ');
    bounded += `. Between halves, bounded means a peak at most 10 % above the first half's, beyond the load's own growth, over the two halves of the minutes after archival reached its steady state; the load served ${loadChange >= 0 ? '+' : ''}${loadChange.toFixed(1)} % requests in the second half`;
  }
}
const verifyLine = (name, r) => {
  if (!r.report && r.code === 0) return `${name}: ${r.out}`;
  if (!r.report) return `${name}: **failed to run** (exit ${r.code}) ${r.err || r.out}`.slice(0, 600);
  const v = r.report;
  return v.ok
    ? `${name}: **OK** — ${fmt(v.events)} events, ${fmt(v.checkpoints)} signed checkpoints${v.files ? `, ${fmt(v.files)} files` : ''}${v.archives ? `, ${fmt(v.archives)} archives (${fmt(v.archivedEvents)} events in them)` : ''}${v.archivedThrough ? `, archived through seq ${fmt(v.archivedThrough)}` : ''} (last seq ${fmt(v.lastSeq)}), ${r.seconds.toFixed(1)} s`
    : `${name}: **FAILED** at seq ${v.seq}${v.file ? ` in ${v.file.split('/').pop()}${v.line ? ` line ${v.line}` : ''}` : ''}: ${v.problem} — ${v.detail} (${fmt(v.events)} events verified before it)`;
};
const mixText = Object.entries(MIX)
  .map(([k, v]) => `${k} ${v}`)
  .join(', ');

console.log(`## Soak: ${MINUTES} minute${MINUTES === 1 ? '' : 's'} of mixed load with archival (issue 16)

custos \`server --dev\` in its own process (SQLite, dev seal, audit to the database and \`audit.jsonl\`), configured with
\`${JSON.stringify({ audit: { ...auditConfig, ...(ARCHIVE ? { archive: { ...auditConfig.archive, dir: '<archive dir>' } } : {}) } })}\`.
The load generator is a separate Node.js process (node:http, keep-alive) running ${CONCURRENCY} concurrent workers; each
picks its next operation by weight (${mixText}): an audited secret read by one of 8 long-lived task tokens; a task
minted by the operator; a delegation from the newest minted task; a revocation of the oldest minted task (with its
delegations). ${CREDS_WORKERS} more workers issue dynamic PostgreSQL credentials (\`POST /v1/creds/pg/reader\` against the
local PostgreSQL, a fresh database) and revoke each lease at once (timed as \`creds\` and \`lease revoke\`): a lane of
their own, since each takes far longer than a read. Warm-up ${WARMUP_MS / 1000} s, not counted.
At the start of each minute the mix pauses while the same client at the same concurrency hits a bare fastify route
(constant JSON, its own process) for ${PROBE_MS / 1000} s: **bare req/s** is the machine's own speed that minute. The load
generator and the server share the machine's ${os.cpus().length} cores, **and the machine is shared with other work**
(load average ${loadStart} at the start, ${loadEnd} at the end). RSS is the server's VmRSS at the end of the minute (peak of
5-second samples in brackets); disk is the apparent size of every file in the data directory (SQLite, WAL, audit
files) and in the archive directory; online audit records are the chain's head seq minus the last seq archived (from the
archives' signed manifests); CPU µs/req is the server process's CPU time over the requests it served that minute.${
  profiled
    ? `
The server ran under V8's sampling profiler (\`--cpu-prof\`; SOAK_PROFILE=off runs without it): **main thread µs/req** is
the time its JavaScript thread was busy that minute (garbage collection included) over the requests served, and
**archival µs/req** the part of it in archival's own code — the run's reads, expansion, hashing and deletes
(bench/support/soak-profile.mjs). Compression runs on the thread pool: it is in CPU µs/req, not on the main thread.`
    : ''
}

| Min | bare req/s | custos req/s | ÷ bare | ${kinds.map((k) => `${k} req/s`).join(' | ')} | p50 ms | p99 ms | read p99 ms | CPU µs/req |${profiled ? ' main thread µs/req | archival µs/req (% of main) |' : ''} RSS MiB | online audit records | data MiB | db MiB | audit files MiB | archive MiB (files) | errors |
| ---: | ---: | ---: | ---: | ${kinds.map(() => '---:').join(' | ')} | ---: | ---: | ---: | ---: |${profiled ? ' ---: | ---: |' : ''} ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${minutes
  .map(
    (r) =>
      `| ${r.minute} | ${fmt(r.bare.rps)} | ${fmt(r.load.total.rps)} | ${(r.load.total.rps / r.bare.rps).toFixed(3)} | ${kinds
        .map((k) => fmt(r.load.kinds[k]?.rps ?? 0, 1))
        .join(
          ' | ',
        )} | ${fmt(r.load.total.p50, 1)} | ${fmt(r.load.total.p99, 1)} | ${fmt(r.load.kinds.read?.p99 ?? 0, 1)} | ${fmt(r.cpuUsPerReq)} |${
        profiled
          ? ` ${fmt(mainUs(r))} | ${fmt(archivalUs(r), 1)} (${((r.archivalMs / r.busyMs) * 100).toFixed(1)} %) |`
          : ''
      } ${mib(r.rss)} (${mib(r.rssMax)}) | ${fmt(r.head - r.archivedThrough)} | ${mib(r.dataBytes)} | ${mib(r.db)} | ${mib(r.audit)} | ${mib(r.archiveBytes)} (${r.archives}) | ${Object.values(
        r.load.kinds,
      ).reduce((a, k) => a + k.failed, 0)} |`,
  )
  .join('\n')}

By kind over the run (median of the minutes' p50, highest minute's p99):

| Kind | requests | p50 ms | worst p99 ms | failed |
| --- | ---: | ---: | ---: | ---: |
${kinds
  .map((k) => {
    const per = minutes.map((r) => r.load.kinds[k]).filter(Boolean);
    const n = minutes.reduce((a, r) => a + (r.load.kinds[k]?.rps ?? 0) * r.load.seconds, 0);
    return `| ${k} | ${fmt(n)} | ${fmt(spread(per.map((x) => x.p50)).median, 1)} | ${fmt(Math.max(...per.map((x) => x.p99)), 1)} | ${fmt(per.reduce((a, x) => a + x.failed, 0))} |`;
  })
  .join('\n')}

Summary (${minutes.length} minutes, ${fmt(allRequests)} requests, started ${startedAt.toISOString()}):

- Throughput: custos ${fmt(total.min)}–${fmt(total.max)} req/s (spread ${total.pct.toFixed(1)} % of the median); bare route
  ${fmt(bareSpread.min)}–${fmt(bareSpread.max)} req/s (spread ${bareSpread.pct.toFixed(1)} %): the machine's own drift. custos ÷ bare per
  minute ${ratio.min.toFixed(3)}–${ratio.max.toFixed(3)} (spread ${ratio.pct.toFixed(1)} %). Server CPU per request ${fmt(cpuUs.min)}–${fmt(cpuUs.max)} µs.
- p99: ${fmt(p99.min, 1)}–${fmt(p99.max, 1)} ms over all requests; reads ${fmt(readP99.min, 1)}–${fmt(readP99.max, 1)} ms.${phases.length ? `\n- Medians ${phases.join('; ')}.` : ''}
${
  profiled && firstArchiveMinute
    ? `- Archival's own work (the profile): ${archivalShare()}.
`
    : ''
}- RSS: ${mib(rss.min)}–${mib(rss.max)} MiB at the minutes' ends (peak ${mib(Math.max(0, ...minutes.map((r) => r.rssMax)))} MiB).
- Disk: data directory ${mib(data.min)}–${mib(data.max)} MiB (database ${mib(dbSpread.min)}–${mib(dbSpread.max)} MiB), ${mib(finalData)} MiB at the end; archive directory ${mib(finalArchive)} MiB in ${archives.length} archives at the end.
  The database at the end (dbstat, server stopped): ${dbComposition}.
  Retention: ${ARCHIVE ? `archive every ${ARCHIVE_EVERY}, keep ${KEEP_ONLINE} online, each run spread over ${ARCHIVE_SPREAD ?? '80 % of every (the default)'}` : 'archival off'}; ${bounded}.
- Errors: ${fmt(errors)} non-2xx or failed requests${
  Object.keys(statuses).length
    ? ` (by status: ${Object.entries(statuses)
        .map(([s, n]) => `${s}: ${n}`)
        .join(', ')})`
    : ''
}${leftover ? `; ${leftover} leases still active at the stop, revoked after it` : ''}.
- ${shutdownLine}.
- ${verifyLine('Online verify (`custos audit verify`, on the running server after the load)', online)}
- ${verifyLine(`Archives offline (\`custos audit verify --file\` over the ${archives.length} archives)`, archived)}
- ${verifyLine(`End to end: the ${archives.length} archives then the database's online tail as one chain (\`verifyAuditArchives(…, { online })\`, server stopped)`, endToEnd)}
- ${verifyLine('Audit files (`custos audit verify --file <data dir>`: rotated files and audit.jsonl in sequence)', files)}
`);
if ((serverDown && !stopping) || shutdown.code !== 0) process.exitCode = 1;
if (stopped.kinds) log('load stopped');
