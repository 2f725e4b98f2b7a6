// Shared pieces of the HTTP benchmarks: a free port, a custos dev server in
// its own process, and one autocannon run.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

export const root = join(import.meta.dirname, '..');
export const DURATION = Number(process.env.BENCH_DURATION ?? 10);
export const CONNECTIONS = 32;
export const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

export const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

export async function waitFor(url, tries = 200) {
  for (let i = 0; i < tries; i++) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not up: ${url}`);
}

/** One autocannon run against a server in another process. */
export const load = (opts) =>
  new Promise((resolve, reject) =>
    autocannon({ connections: CONNECTIONS, duration: DURATION, ...opts }, (e, r) => (e ? reject(e) : resolve(r))),
  );

/** A table row: req/s, p50, p99, failures. */
export const row = (name, r) =>
  `| ${name} | ${fmt(r.requests.average)} | ${fmt(r.latency.p50, 1)} | ${fmt(r.latency.p99, 1)} | ${fmt(r.non2xx + r.errors)} |`;

/** custos on its embedded default (dev seal, SQLite) in a temp dir; `call` uses the root token. `args`: more server flags. */
export async function startCustos(env = {}, nodeArgs = [], args = []) {
  const dir = mkdtempSync(join(tmpdir(), 'custos-bench-'));
  const port = await freePort();
  const addr = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      join(root, 'packages/cli/bin/custos.js'),
      'server',
      '--dev',
      '--data',
      dir,
      '--listen',
      `127.0.0.1:${port}`,
      ...args,
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CUSTOS_LOG_LEVEL: 'warn', ...env } },
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
  const stop = async () => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  return { addr, rootToken, call, stop, pid: child.pid };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The reference: a bare fastify route returning a constant JSON body, in its
 * own process, as issue 2 defines it. `stop` kills it.
 */
export async function startBareRoute() {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import Fastify from 'fastify';
       const app = Fastify({ logger: false });
       app.get('/bare', async () => ({ data: { password: 'constant-bench-value' }, metadata: { version: 1 } }));
       await app.listen({ host: '127.0.0.1', port: ${port} });`,
    ],
    { cwd: join(root, 'packages/server'), stdio: 'inherit' },
  );
  const url = `http://127.0.0.1:${port}/bare`;
  await waitFor(url);
  return { url, pid: child.pid, stop: () => child.kill('SIGTERM') };
}
