// The soak's load generator (bench/soak.bench.mjs forks it): its own process,
// so the server's process only serves. It runs SOAK concurrency workers, each
// picking the next operation from the mix, and records every request's
// latency by kind. The parent drives it over IPC:
//   { cmd: 'start', config }   begin the mixed load: `concurrency` workers on
//                              the weighted `mix`, `credsWorkers` more issuing
//                              and revoking dynamic credentials
//   { cmd: 'probe', url, ms }  pause the mix, run the bare route with the same
//                              client and concurrency for `ms`, resume; replies
//                              with the probe's figures
//   { cmd: 'collect' }         reply with the figures since the last collect
//                              (time spent probing excluded) and reset them
//   { cmd: 'stop' }            drain and reply, then exit
import http from 'node:http';

let config;
let agent;
let running = false;
let paused = false;
let resume;
let pausedUntilResumed = Promise.resolve();
let inflight = 0;
let drained;
let activeSince = performance.now();
let activeMs = 0;
let stats = new Map();
// Tasks minted by the load: delegations use the newest, revocations take the oldest.
const minted = [];

/** One HTTP request over the shared keep-alive agent: status, parsed body, milliseconds. */
function request(base, method, path, token, body) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      `${base}${path}`,
      {
        method,
        agent,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const ms = performance.now() - t0;
          let parsed;
          try {
            parsed = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
          } catch {}
          resolve({ status: res.statusCode, body: parsed, ms });
        });
        res.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }));
      },
    );
    req.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }));
    req.end(payload);
  });
}

function record(kind, r, expected = 200) {
  let s = stats.get(kind);
  if (!s) {
    s = { n: 0, failed: 0, statuses: {}, lat: [] };
    stats.set(kind, s);
  }
  s.n++;
  s.lat.push(r.ms);
  if (r.status !== expected) {
    s.failed++;
    s.statuses[r.status] = (s.statuses[r.status] ?? 0) + 1;
  }
}

const pick = (list) => list[Math.floor(Math.random() * list.length)];

const ops = {
  async read() {
    const r = await request(config.addr, 'GET', '/v1/secrets/data/kv/bench/db', pick(config.coordinators).token);
    record('read', r);
  },
  async mint() {
    const r = await request(config.addr, 'POST', '/v1/roles/agent/tasks', config.rootToken, { ttl: '15m' });
    record('mint', r);
    if (r.status === 200) minted.push({ id: r.body.task_id, token: r.body.token });
  },
  async delegate() {
    // The newest minted task (revocations take the oldest, so it is not being revoked).
    const parent = minted.length > 0 ? minted[minted.length - 1] : pick(config.coordinators);
    const r = await request(config.addr, 'POST', '/v1/tasks/delegate', parent.token, { ttl: '5m' });
    record('delegate', r);
  },
  async revoke() {
    // Keep a few minted tasks for delegations; below that, mint instead.
    if (minted.length <= 10) return ops.mint();
    const task = minted.shift();
    const r = await request(config.addr, 'POST', `/v1/tasks/${task.id}/revoke`, config.rootToken, {});
    record('revoke task', r, r.status === 204 ? 204 : 200);
  },
  async creds() {
    const r = await request(config.addr, 'POST', '/v1/creds/pg/reader', pick(config.coordinators).token, {
      ttl: '10m',
    });
    record('creds', r);
    if (r.status !== 200) return;
    const v = await request(config.addr, 'POST', `/v1/leases/${r.body.lease_id}/revoke`, config.rootToken, {});
    record('lease revoke', v);
  },
};

/** The mix as a cumulative table: [[kind, upTo], …] with upTo in (0, 1]. */
function mixTable(mix) {
  const total = Object.values(mix).reduce((a, b) => a + b, 0);
  let acc = 0;
  return Object.entries(mix).map(([kind, w]) => {
    acc += w / total;
    return [kind, acc];
  });
}

async function worker(table) {
  while (running) {
    if (paused) {
      await pausedUntilResumed;
      continue;
    }
    const x = Math.random();
    const kind = (table.find(([, upTo]) => x < upTo) ?? table[table.length - 1])[0];
    inflight++;
    try {
      await ops[kind]();
    } finally {
      inflight--;
      if (inflight === 0 && drained) drained();
    }
  }
}

async function pause() {
  paused = true;
  activeMs += performance.now() - activeSince;
  pausedUntilResumed = new Promise((r) => {
    resume = r;
  });
  if (inflight > 0) await new Promise((r) => (drained = r));
  drained = undefined;
}

function unpause() {
  paused = false;
  activeSince = performance.now();
  resume();
}

async function probe(url, ms) {
  const u = new URL(url);
  const base = `${u.protocol}//${u.host}`;
  const lat = [];
  let failed = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: config.concurrency }, async () => {
      while (performance.now() < end) {
        const r = await request(base, 'GET', u.pathname);
        lat.push(r.ms);
        if (r.status !== 200) failed++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { rps: lat.length / seconds, ...percentiles(lat), failed };
}

function percentiles(lat) {
  const sorted = Float64Array.from(lat).sort();
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0);
  return { n: sorted.length, p50: at(0.5), p99: at(0.99) };
}

function collect() {
  const now = performance.now();
  const seconds = (activeMs + (paused ? 0 : now - activeSince)) / 1000;
  activeMs = 0;
  activeSince = now;
  const kinds = {};
  const all = [];
  for (const [kind, s] of stats) {
    kinds[kind] = { rps: s.n / seconds, failed: s.failed, statuses: s.statuses, ...percentiles(s.lat) };
    for (const l of s.lat) all.push(l);
  }
  stats = new Map();
  return { seconds, kinds, total: { rps: all.length / seconds, ...percentiles(all) }, minted: minted.length };
}

process.on('message', async (m) => {
  if (m.cmd === 'start') {
    config = m.config;
    agent = new http.Agent({ keepAlive: true, maxSockets: config.concurrency + config.credsWorkers });
    running = true;
    activeSince = performance.now();
    // Dynamic credentials run in a lane of their own (config.credsWorkers
    // workers): an issue and a revocation against PostgreSQL take far longer
    // than a read, and drawn from the shared mix they would occupy most
    // workers, so the mix would measure PostgreSQL rather than custos.
    const table = mixTable(config.mix);
    config.workers = [
      ...Array.from({ length: config.concurrency }, () => worker(table)),
      ...Array.from({ length: config.credsWorkers }, () => worker([['creds', 1]])),
    ];
    process.send({ cmd: 'started' });
  } else if (m.cmd === 'probe') {
    await pause();
    const result = await probe(m.url, m.ms);
    unpause();
    process.send({ cmd: 'probe', result });
  } else if (m.cmd === 'collect') {
    process.send({ cmd: 'collect', result: collect() });
  } else if (m.cmd === 'stop') {
    running = false;
    if (paused) unpause();
    await Promise.all(config.workers);
    const result = collect();
    process.send({ cmd: 'stopped', result }, () => process.exit(0));
  }
});
