#!/usr/bin/env node
// A coordinator agent, the two levels of sub-agents it spawns, and one
// revocation that ends them all — against a real custos dev server.
//
//   npm ci && node examples/agent-tree.mjs
//
// Uses the built packages (`npm ci` runs `tsc -b`) and plain fetch: every
// call below is what an agent, in any language, sends over HTTP. Exits 0 only
// when every expectation held.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, resolveServerConfig, startServer } from '@custos/server';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
let failures = 0;
let checks = 0;

/** Records one expectation and prints it. */
function expect(description, holds) {
  checks++;
  if (!holds) failures++;
  console.log(`  ${holds ? 'ok  ' : 'FAIL'}  ${description}`);
}

// Obviously fake values, made now: nothing that looks like a real key is committed.
const fakeValue = (label) => `fake-${label}-${randomBytes(6).toString('hex')}`;

const dir = mkdtempSync(join(tmpdir(), 'custos-example-'));
const server = await startServer(
  resolveServerConfig({ dev: true, data: dir, listen: '127.0.0.1:0' }, dir),
  createLogger('silent'),
);

/** One HTTP call: JSON by default, form-encoded for the RFC 8693 token endpoint. */
async function api(method, path, { token, body, form } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = form ? 'application/x-www-form-urlencoded' : 'application/json';
  const response = await fetch(`${server.address}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: form ? new URLSearchParams(body).toString() : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** RFC 8693: trade a task token for a narrower child task token. */
const delegate = (parentToken, scope, ttl) =>
  api('POST', '/v1/oauth/token', {
    form: true,
    body: { grant_type: TOKEN_EXCHANGE, subject_token: parentToken, subject_token_type: JWT_TOKEN_TYPE, scope, ttl },
  });

const read = async (token, path) => (await api('GET', `/v1/secrets/data/${path}`, { token })).status;

try {
  console.log(`custos dev server at ${server.address} (data in ${dir})`);
  // The dev server wrote its root token to its data directory (mode 0600).
  const operator = readFileSync(join(dir, 'root-token'), 'utf8').trim();

  console.log('\n1. The operator writes a policy, some secrets and the coordinator role');
  const policy = await api('PUT', '/v1/policies/research-read', {
    token: operator,
    body: {
      policy:
        'permit(principal, action in [Custos::Action::"read", Custos::Action::"list"], resource in Custos::Path::"kv/research/");\n' +
        // Delegation is an action too: this role's tasks may mint children.
        'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");\n',
    },
  });
  expect('policy research-read written', policy.status === 200);
  for (const path of ['kv/research/papers/attention', 'kv/research/notes/ideas', 'kv/finance/budget']) {
    const put = await api('PUT', `/v1/secrets/data/${path}`, {
      token: operator,
      body: { data: { v: fakeValue('v') } },
    });
    expect(`secret ${path} written`, put.status === 200);
  }
  const role = await api('PUT', '/v1/roles/coordinator', {
    token: operator,
    body: { policies: ['research-read'], max_ttl: '15m', max_depth: 3, auth: ['bootstrap'] },
  });
  expect('role coordinator (max depth 3, bootstrap login) written', role.status === 200);

  console.log('\n2. The coordinator agent is introduced with a single-use bootstrap token');
  const bootstrap = await api('POST', '/v1/roles/coordinator/bootstrap', { token: operator, body: { ttl: '5m' } });
  const login = await api('POST', '/v1/auth/bootstrap/login', { body: { token: bootstrap.body.token, ttl: '10m' } });
  expect('bootstrap login starts the coordinator task', login.status === 200);
  const replay = await api('POST', '/v1/auth/bootstrap/login', { body: { token: bootstrap.body.token } });
  expect('the bootstrap token does not work twice (401)', replay.status === 401);
  const coordinator = { name: 'coordinator', token: login.body.token, id: login.body.task_id };

  console.log('\n3. It delegates narrower slices, two levels down');
  // The researcher's slice includes `delegate:`, so it may hand a narrower slice on.
  const r = await delegate(coordinator.token, 'read:kv/research/* delegate:sys/tasks/*', '8m');
  expect('researcher task minted with read:kv/research/* delegate:sys/tasks/*', r.status === 200);
  const researcher = { name: 'researcher', token: r.body.access_token, id: r.body.task_id };
  const s = await delegate(researcher.token, 'read:kv/research/papers/*', '5m');
  expect('summarizer task minted with read:kv/research/papers/*', s.status === 200);
  const summarizer = { name: 'summarizer', token: s.body.access_token, id: s.body.task_id };
  // The token endpoint answers refusals as RFC 6749 §5.2 says: 400, an OAuth
  // error, and the custos code beside it.
  const wider = await delegate(researcher.token, 'read:kv/*', '1m');
  expect(
    'researcher cannot mint a wider child (400 invalid_scope, CUSTOS_ERR_SCOPE_EXCEEDS_PARENT)',
    wider.status === 400 &&
      wider.body.error === 'invalid_scope' &&
      wider.body.custos_code === 'CUSTOS_ERR_SCOPE_EXCEEDS_PARENT',
  );
  const further = await delegate(summarizer.token, 'read:kv/research/papers/*', '1m');
  expect(
    'summarizer, whose slice has no delegate:, cannot mint children at all (CUSTOS_ERR_PERMISSION_DENIED)',
    further.status === 400 && further.body.custos_code === 'CUSTOS_ERR_PERMISSION_DENIED',
  );

  console.log('\n4. Each agent reads only its slice');
  expect(
    'coordinator reads kv/research/notes/ideas',
    (await read(coordinator.token, 'kv/research/notes/ideas')) === 200,
  );
  expect(
    'coordinator is refused kv/finance/budget (403)',
    (await read(coordinator.token, 'kv/finance/budget')) === 403,
  );
  expect('researcher reads kv/research/notes/ideas', (await read(researcher.token, 'kv/research/notes/ideas')) === 200);
  expect('researcher is refused kv/finance/budget (403)', (await read(researcher.token, 'kv/finance/budget')) === 403);
  expect(
    'summarizer reads kv/research/papers/attention',
    (await read(summarizer.token, 'kv/research/papers/attention')) === 200,
  );
  expect(
    'summarizer is refused kv/research/notes/ideas (403)',
    (await read(summarizer.token, 'kv/research/notes/ideas')) === 403,
  );

  console.log('\n5. The task tree');
  const names = new Map([coordinator, researcher, summarizer].map((t) => [t.id, t.name]));
  const tree = await api('GET', `/v1/tasks/${coordinator.id}/tree`, { token: operator });
  for (const t of tree.body.tasks) {
    console.log(
      `  ${'   '.repeat(t.depth)}${t.id}  ${names.get(t.id)}  depth=${t.depth}  state=${t.state}  scope=${t.scope || '(role grant)'}`,
    );
  }
  expect(
    'the tree has three levels, all active',
    tree.body.tasks.map((t) => `${t.depth}:${t.state}`).join(',') === '0:active,1:active,2:active',
  );

  console.log('\n6. The operator revokes the coordinator task');
  const revoked = await api('POST', `/v1/tasks/${coordinator.id}/revoke`, { token: operator });
  expect('coordinator task revoked', revoked.status === 200 && revoked.body.state === 'revoked');
  for (const task of [coordinator, researcher, summarizer]) {
    const status = await read(task.token, 'kv/research/papers/attention');
    const introspection = await api('POST', '/v1/oauth/introspect', { token: operator, body: { token: task.token } });
    expect(`${task.name} token refused (${status})`, status === 401);
    expect(`${task.name} introspection: active: ${introspection.body.active}`, introspection.body.active === false);
  }
  const after = await api('GET', `/v1/tasks/${coordinator.id}/tree`, { token: operator });
  expect(
    'every task in the tree is revoked',
    after.body.tasks.every((t) => t.state === 'revoked'),
  );
} catch (error) {
  failures++;
  console.error(`FAIL  ${error instanceof Error ? error.message : String(error)}`);
} finally {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}

if (failures === 0) {
  console.log(`\nall ${checks} expectations held`);
} else {
  console.log(`\n${failures} of ${checks} expectations failed`);
  process.exitCode = 1;
}
