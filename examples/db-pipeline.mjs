#!/usr/bin/env node
// A data pipeline of agents that each get their own PostgreSQL user, lose it
// when their task ends, and keep one consistent view of a secret that is
// rotated while they run — against a real custos dev server and PostgreSQL.
//
//   npm ci && node examples/db-pipeline.mjs
//
// PostgreSQL: CUSTOS_EXAMPLE_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres),
// a user that may create databases and roles. The example makes its own
// database and drops it at the end. Exits 0 only when every expectation held.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, resolveServerConfig, startServer } from '@custos/server';
import pg from 'pg';

let failures = 0;
let checks = 0;
function expect(description, holds) {
  checks++;
  if (!holds) failures++;
  console.log(`  ${holds ? 'ok  ' : 'FAIL'}  ${description}`);
}
const fakeValue = (label) => `fake-${label}-${randomBytes(6).toString('hex')}`;

const adminUrl = process.env.CUSTOS_EXAMPLE_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `custos_example_${randomBytes(4).toString('hex')}`;
const withAdmin = async (url, fn) => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
};
await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE ${database}`));
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${database}`;
await withAdmin(dbUrl.toString(), async (c) => {
  await c.query('CREATE TABLE invoices (id int PRIMARY KEY, amount int)');
  await c.query('INSERT INTO invoices VALUES (1, 120), (2, 80)');
});
const roleExists = (name) =>
  withAdmin(adminUrl, async (c) => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount > 0);
const loginAs = async ({ username, password }) => {
  const url = new URL(dbUrl);
  url.username = username;
  url.password = password;
  const client = new pg.Client({ connectionString: url.toString() });
  client.on('error', () => undefined); // revocation ends this session on purpose
  await client.connect();
  return client;
};

const dir = mkdtempSync(join(tmpdir(), 'custos-example-'));
// custos refuses outbound connections to loopback and private addresses unless
// the operator allows them: the database here is local, so allow its host
// (`custos server --egress-allow 127.0.0.1` on the command line).
const server = await startServer(
  resolveServerConfig({ dev: true, data: dir, listen: '127.0.0.1:0', egressAllow: [new URL(adminUrl).hostname] }, dir),
  createLogger('silent'),
);
async function api(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${server.address}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

try {
  console.log(`custos dev server at ${server.address}; PostgreSQL database ${database}`);
  const operator = readFileSync(join(dir, 'root-token'), 'utf8').trim();

  console.log('\n1. The operator adds the database as an engine, a reader role, a policy and the agent role');
  const engine = await api('PUT', '/v1/engines/warehouse', {
    token: operator,
    body: { type: 'postgres', url: dbUrl.toString() },
  });
  expect(
    'engine added; its admin URL is not in the answer',
    engine.status === 200 && !JSON.stringify(engine.body).includes(dbUrl.toString()),
  );
  const reader = await api('PUT', '/v1/engines/warehouse/roles/reader', {
    token: operator,
    body: { default_ttl: '10m', max_ttl: '1h' },
  });
  expect('role warehouse/reader written (built-in read-only statements)', reader.status === 200);
  const badRole = await api('PUT', '/v1/engines/warehouse/roles/broken', {
    token: operator,
    body: { creation_statements: ['CREATE ROLE "{{name}}" LOGIN', 'GRANT NOTHING TO "{{name}}"'] },
  });
  expect(`a role with invalid SQL is refused when written (${badRole.body?.error?.code})`, badRole.status === 400);
  await api('PUT', '/v1/policies/pipeline', {
    token: operator,
    body: {
      policy:
        'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"warehouse/");\n' +
        'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/pipeline/");\n' +
        'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");\n',
    },
  });
  await api('PUT', '/v1/roles/etl-agent', {
    token: operator,
    body: { policies: ['pipeline'], max_ttl: '30m', max_depth: 2, auth: ['bootstrap'] },
  });
  const apiKeyV1 = fakeValue('api-key');
  await api('PUT', '/v1/secrets/data/kv/pipeline/upstream', { token: operator, body: { data: { api_key: apiKeyV1 } } });

  console.log('\n2. Pipeline A starts: it reads the upstream key and gets its own database user');
  const a = (await api('POST', '/v1/roles/etl-agent/tasks', { token: operator, body: { ttl: '10m' } })).body;
  const aKey = (await api('GET', '/v1/secrets/data/kv/pipeline/upstream', { token: a.token })).body.data.api_key;
  expect('pipeline A reads the upstream key', aKey === apiKeyV1);
  const aCreds = (await api('POST', '/v1/creds/warehouse/reader', { token: a.token, body: {} })).body;
  expect(
    `pipeline A got user ${aCreds.username} (lease ${aCreds.lease_id})`,
    (await roleExists(aCreds.username)) === true,
  );
  const aSession = await loginAs(aCreds);
  const total = (await aSession.query('SELECT sum(amount)::int AS total FROM invoices')).rows[0].total;
  expect(`pipeline A queries the warehouse as its own user (total ${total})`, total === 200);

  console.log('\n3. The operator rotates the upstream key in the middle of the pipeline');
  const rotated = await api('POST', '/v1/secrets/rotate/kv/pipeline/upstream', { token: operator });
  expect(
    `rotation: version ${rotated.body.version} is current, ${rotated.body.previous} is previous`,
    rotated.status === 200,
  );

  console.log(
    '\n4. Pipeline A (and a step it spawns now) still sees the key it started with; pipeline B sees the new one',
  );
  const step = (
    await api('POST', '/v1/tasks/delegate', { token: a.token, body: { scope: 'read:kv/pipeline/*', ttl: '5m' } })
  ).body;
  const stepKey = (await api('GET', '/v1/secrets/data/kv/pipeline/upstream', { token: step.token })).body.data.api_key;
  const aAgain = (await api('GET', '/v1/secrets/data/kv/pipeline/upstream', { token: a.token })).body.data.api_key;
  expect('pipeline A still reads the version it pinned', aAgain === apiKeyV1);
  expect('a step spawned after the rotation reads the same version as its pipeline', stepKey === apiKeyV1);
  const b = (await api('POST', '/v1/roles/etl-agent/tasks', { token: operator, body: { ttl: '10m' } })).body;
  const bKey = (await api('GET', '/v1/secrets/data/kv/pipeline/upstream', { token: b.token })).body.data.api_key;
  expect('pipeline B, started after the rotation, reads the new key', bKey !== apiKeyV1 && bKey.length > 0);

  console.log('\n5. Pipeline A ends: its database user is dropped and its open session closed');
  await api('POST', `/v1/tasks/${a.task_id}/end`, { token: operator });
  expect(`user ${aCreds.username} is gone`, (await roleExists(aCreds.username)) === false);
  const sessionClosed = await aSession.query('SELECT 1').then(
    () => false,
    () => true,
  );
  expect('its open session was terminated', sessionClosed);
  await aSession.end().catch(() => undefined);
  const lease = (await api('GET', `/v1/leases/${aCreds.lease_id}`, { token: operator })).body;
  expect(`its lease is ${lease.state}`, lease.state === 'revoked');
  const bCreds = (await api('POST', '/v1/creds/warehouse/reader', { token: b.token, body: {} })).body;
  expect('pipeline B still gets credentials of its own', (await roleExists(bCreds.username)) === true);
  await api('POST', `/v1/tasks/${b.task_id}/end`, { token: operator });
  expect('and loses them when it ends', (await roleExists(bCreds.username)) === false);
} catch (error) {
  failures++;
  console.log(`  FAIL  ${error?.message ?? error}`);
} finally {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  await withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
}
console.log(failures ? `\n${failures} of ${checks} expectations FAILED` : `\nall ${checks} expectations held`);
process.exit(failures ? 1 : 0);
