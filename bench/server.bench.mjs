// Server benchmark (issue 2): an authenticated, policy-checked, audited secret
// read over HTTP on the embedded default (SQLite, dev seal, database + file
// audit sinks), as a ratio to a bare fastify route returning a constant JSON
// body, both measured here with the same load generator (autocannon, 32
// connections) against a server in its own process. Also: secret writes, and
// audit verification speed. Prints one Markdown section.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = 32;
const root = join(import.meta.dirname, '..');

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function waitFor(url, tries = 200) {
  for (let i = 0; i < tries; i++) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not up: ${url}`);
}

function run(opts) {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: DURATION, ...opts }, (err, result) =>
      err ? reject(err) : resolve(result),
    );
  });
}

const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

// 1. The bare route, in its own process.
const barePort = await freePort();
const bare = spawn(
  process.execPath,
  [
    '--input-type=module',
    '-e',
    `import Fastify from 'fastify';
     const app = Fastify({ logger: false });
     app.get('/bare', async () => ({ data: { password: 'constant-bench-value' }, metadata: { version: 1 } }));
     await app.listen({ host: '127.0.0.1', port: ${barePort} });`,
  ],
  { cwd: join(root, 'packages/server'), stdio: 'inherit' },
);
await waitFor(`http://127.0.0.1:${barePort}/bare`);
const bareResult = await run({ url: `http://127.0.0.1:${barePort}/bare` });
bare.kill('SIGTERM');

// 2. custos on its embedded default.
const dir = mkdtempSync(join(tmpdir(), 'custos-bench-'));
const port = await freePort();
const addr = `http://127.0.0.1:${port}`;
const custos = spawn(
  process.execPath,
  [join(root, 'packages/cli/bin/custos.js'), 'server', '--dev', '--data', dir, '--listen', `127.0.0.1:${port}`],
  { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CUSTOS_LOG_LEVEL: 'warn' } },
);
await waitFor(`${addr}/v1/sys/health`);
const rootToken = readFileSync(join(dir, 'root-token'), 'utf8').trim();
const call = async (method, path, body, token = rootToken) => {
  const r = await fetch(`${addr}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.status === 204 ? undefined : r.json();
};
await call('PUT', '/v1/policies/bench-read', {
  policy:
    'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/bench/");\n' +
    'permit(principal, action == Custos::Action::"write", resource in Custos::Path::"kv/bench/w/");',
});
const { token } = await call('POST', '/v1/auth/token/create', { policies: ['bench-read'], ttl: '1h' });
await call('PUT', '/v1/secrets/data/kv/bench/db', {
  data: { username: 'bench-user', password: `fake-${Math.random().toString(36).slice(2)}` },
});

const readResult = await run({
  url: `${addr}/v1/secrets/data/kv/bench/db`,
  headers: { authorization: `Bearer ${token}` },
});
const writeResult = await run({
  url: `${addr}/v1/secrets/data/kv/bench/w/app`,
  method: 'PUT',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: JSON.stringify({ data: { password: 'fake-bench-write-value-0123456789' } }),
});
const errors = [readResult, writeResult].map((r) => r.non2xx + r.errors);

const t0 = process.hrtime.bigint();
const report = await call('GET', '/v1/audit/verify');
const verifySeconds = Number(process.hrtime.bigint() - t0) / 1e9;
custos.kill('SIGTERM');
await new Promise((r) => custos.once('exit', r));
rmSync(dir, { recursive: true, force: true });

const ratio = readResult.requests.average / bareResult.requests.average;
const row = (name, r) =>
  `| ${name} | ${fmt(r.requests.average)} | ${fmt(r.latency.p50, 1)} | ${fmt(r.latency.p99, 1)} | ${fmt(r.non2xx + r.errors)} |`;
console.log(`## Server (issue 2)

Load: autocannon in the benchmark process, ${CONNECTIONS} connections, ${DURATION} s per run, against a server in its
own process on 127.0.0.1 (so the load generator and the server share the 2 cores).
custos runs its embedded default: SQLite (WAL), the dev seal, audit to the database and a JSON-lines file with
fdatasync per group-committed batch. The read uses a non-root token whose Cedar policy grants \`kv/bench/\`.

| Run | req/s | p50 ms | p99 ms | non-2xx + errors |
| --- | ---: | ---: | ---: | ---: |
${row('bare fastify route, constant JSON', bareResult)}
${row('custos secret read (authenticated, policy-checked, audited)', readResult)}
${row('custos secret write (new version each, audited twice)', writeResult)}

**Audited read / bare route: ${ratio.toFixed(2)}** (target ≥ 0.5).

Audit verify: ${fmt(report.events)} events and ${fmt(report.checkpoints)} checkpoints verified in ${verifySeconds.toFixed(2)} s over HTTP
= **${fmt(report.events / verifySeconds)} events/s** (ok: ${report.ok}).
`);
if (errors.some((e) => e > 0)) process.stderr.write(`warning: non-2xx/errors during runs: ${errors}\n`);
