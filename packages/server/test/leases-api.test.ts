import { createEngine } from '@custos/engines';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  hasPostgres,
  postgresUrl,
  postgresRoleExists as roleExists,
  type TestDatabase,
} from '../../../test-support/postgres.js';
import { auditEvents, startTestServer, type TestServer } from './test-server.js';

async function dropRole(name: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  try {
    await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

/** A client logged in as a leased user (its `error` event is swallowed: revocation kills it on purpose). */
async function connectAs(databaseUrl: string, username: string, password: string): Promise<pg.Client> {
  const url = new URL(databaseUrl);
  url.username = username;
  url.password = password;
  const client = new pg.Client({ connectionString: url.toString() });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

interface Creds {
  lease_id: string;
  username: string;
  password: string;
  expire_time: string;
  task_id: string | null;
}

describe.skipIf(!hasPostgres())('dynamic PostgreSQL credentials leased to tasks', () => {
  let s: TestServer;
  let target: TestDatabase;

  const login = async (): Promise<{ token: string; task_id: string }> => {
    const created = await s.call({ method: 'POST', url: '/v1/roles/db-agent/bootstrap', payload: { ttl: '5m' } });
    expect(created.statusCode).toBe(200);
    const response = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: created.json().token, ttl: '10m' },
    });
    expect(response.statusCode).toBe(200);
    return response.json();
  };
  const creds = async (token: string, role = 'reader', payload: object = {}) =>
    s.call({ method: 'POST', url: `/v1/creds/pg-main/${role}`, token, payload });

  beforeAll(async () => {
    target = await createTestDatabase();
    const admin = new pg.Client({ connectionString: target.url });
    await admin.connect();
    await admin.query('CREATE TABLE orders (id int PRIMARY KEY, total int)');
    await admin.query('INSERT INTO orders VALUES (1, 10), (2, 20)');
    await admin.end();
    s = await startTestServer('sqlite', { engineFactory: createEngine });
    const policy = await s.call({
      method: 'PUT',
      url: '/v1/policies/db-read',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"pg-main/");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    expect(policy.statusCode).toBe(200);
    const role = await s.call({
      method: 'PUT',
      url: '/v1/roles/db-agent',
      payload: { policies: ['db-read'], max_ttl: '15m', max_depth: 2, auth: ['bootstrap'] },
    });
    expect(role.statusCode).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
    await target?.drop();
  });

  it('stores the engine’s admin URL behind the barrier and never returns it', async () => {
    const added = await s.call({
      method: 'PUT',
      url: '/v1/engines/pg-main',
      payload: { type: 'postgres', url: target.url },
    });
    expect(added.statusCode).toBe(200);
    const password = new URL(target.url).password;
    for (const response of [added, await s.call({ method: 'GET', url: '/v1/engines/pg-main' })]) {
      expect(response.json()).toMatchObject({ name: 'pg-main', type: 'postgres' });
      expect(response.body).not.toContain(target.url);
      if (password) expect(response.body).not.toContain(password);
    }
    expect((await s.call({ method: 'GET', url: '/v1/engines' })).json()).toEqual({ keys: ['pg-main'] });
  });

  it('refuses an engine it cannot reach, with a clear error', async () => {
    const response = await s.call({
      method: 'PUT',
      url: '/v1/engines/pg-down',
      payload: { type: 'postgres', url: 'postgres://nobody@127.0.0.1:1/none' },
    });
    expect(response.statusCode).toBe(503);
    expect(response.json().error.code).toBe('CUSTOS_ERR_ENGINE_UNAVAILABLE');
    expect((await s.call({ method: 'GET', url: '/v1/engines/pg-down' })).statusCode).toBe(404);
  });

  it('writes roles with built-in statements and refuses invalid SQL when the role is written', async () => {
    const reader = await s.call({
      method: 'PUT',
      url: '/v1/engines/pg-main/roles/reader',
      payload: { default_ttl: '5m', max_ttl: '1h' },
    });
    expect(reader.statusCode).toBe(200);
    expect(reader.json()).toMatchObject({ name: 'reader', default_ttl_ms: 300_000, max_ttl_ms: 3_600_000 });
    const bad = await s.call({
      method: 'PUT',
      url: '/v1/engines/pg-main/roles/broken',
      payload: {
        creation_statements: [
          'CREATE ROLE "{{name}}" WITH LOGIN PASSWORD \'{{password}}\'',
          'GRANT SELEKT ON orders TO "{{name}}"',
        ],
      },
    });
    expect(bad.statusCode).toBe(400);
    expect((await s.call({ method: 'GET', url: '/v1/engines/pg-main/roles/broken' })).statusCode).toBe(404);
    expect((await s.call({ method: 'GET', url: '/v1/engines/pg-main/roles' })).json()).toEqual({ keys: ['reader'] });
  });

  it('gives a task its own database user, which it can use, and drops it (closing its sessions) when the task ends', async () => {
    const task = await login();
    const response = await creds(task.token);
    expect(response.statusCode).toBe(200);
    const issued = response.json() as Creds;
    expect(issued.task_id).toBe(task.task_id);
    expect(issued.lease_id).toMatch(/^lea_/);
    const session = await connectAs(target.url, issued.username, issued.password);
    expect((await session.query('SELECT sum(total)::int AS s FROM orders')).rows[0].s).toBe(30);
    await expect(session.query('INSERT INTO orders VALUES (3, 30)')).rejects.toThrow();

    const listed = await s.call({ method: 'GET', url: '/v1/leases', token: task.token });
    expect(listed.json().leases.map((l: { id: string }) => l.id)).toEqual([issued.lease_id]);
    expect(listed.body).not.toContain(issued.password);

    const started = Date.now();
    expect((await s.call({ method: 'POST', url: `/v1/tasks/${task.task_id}/end` })).statusCode).toBe(200);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await roleExists(issued.username)).toBe(false);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    await session.end().catch(() => undefined);
    const lease = await s.call({ method: 'GET', url: `/v1/leases/${issued.lease_id}` });
    expect(lease.json()).toMatchObject({ state: 'revoked', username: issued.username });
    // The password is in no audit event.
    expect(JSON.stringify(await auditEvents(s.storage))).not.toContain(issued.password);
  });

  it('revoking a parent task drops the users of its whole subtree', async () => {
    const parent = await login();
    const exchange = await s.call({
      method: 'POST',
      url: '/v1/tasks/delegate',
      token: parent.token,
      payload: { scope: 'issue:pg-main/reader', ttl: '5m' },
    });
    expect(exchange.statusCode).toBe(200);
    const child = exchange.json() as { token: string; task_id: string };
    const mine = (await creds(parent.token)).json() as Creds;
    const childs = (await creds(child.token)).json() as Creds;
    expect(childs.task_id).toBe(child.task_id);
    // A child may not manage its parent's lease; the parent may manage its child's.
    expect((await s.call({ method: 'GET', url: `/v1/leases/${mine.lease_id}`, token: child.token })).statusCode).toBe(
      403,
    );
    expect(
      (await s.call({ method: 'GET', url: `/v1/leases/${childs.lease_id}`, token: parent.token })).statusCode,
    ).toBe(200);
    expect(await roleExists(childs.username)).toBe(true);
    expect((await s.call({ method: 'POST', url: `/v1/tasks/${parent.task_id}/revoke` })).statusCode).toBe(200);
    expect(await roleExists(mine.username)).toBe(false);
    expect(await roleExists(childs.username)).toBe(false);
    expect((await creds(child.token)).statusCode).toBe(401);
  });

  it('renews within max TTL, revokes on request, and refuses a task without the issue grant', async () => {
    const task = await login();
    const issued = (await creds(task.token, 'reader', { ttl: '1m' })).json() as Creds;
    const renewed = await s.call({
      method: 'POST',
      url: `/v1/leases/${issued.lease_id}/renew`,
      token: task.token,
      payload: { increment: '10m' },
    });
    expect(renewed.statusCode).toBe(200);
    expect(Date.parse(renewed.json().expire_time)).toBeGreaterThan(Date.parse(issued.expire_time));
    const revoked = await s.call({ method: 'POST', url: `/v1/leases/${issued.lease_id}/revoke`, token: task.token });
    expect(revoked.json().state).toBe('revoked');
    expect(await roleExists(issued.username)).toBe(false);
    expect((await creds(task.token, 'writer')).statusCode).toBe(404);
    const other = await s.call({
      method: 'POST',
      url: '/v1/tasks/delegate',
      token: task.token,
      payload: { scope: 'read:kv/x', ttl: '1m' },
    });
    expect((await creds(other.json().token)).statusCode).toBe(403);
  });

  it('revokes expired leases in the background', async () => {
    const task = await login();
    const issued = (await creds(task.token, 'reader', { ttl: '1s' })).json() as Creds;
    expect(await roleExists(issued.username)).toBe(true);
    await new Promise((r) => setTimeout(r, 1_100));
    await s.node.services().leases.reapExpired();
    expect(await roleExists(issued.username)).toBe(false);
    expect((await s.call({ method: 'GET', url: `/v1/leases/${issued.lease_id}` })).json().state).toBe('revoked');
  });

  it('keeps a lease whose revocation fails, reports it and retries it', async () => {
    const other = await createTestDatabase();
    try {
      expect(
        (await s.call({ method: 'PUT', url: '/v1/engines/pg-gone', payload: { type: 'postgres', url: other.url } }))
          .statusCode,
      ).toBe(200);
      expect((await s.call({ method: 'PUT', url: '/v1/engines/pg-gone/roles/r', payload: {} })).statusCode).toBe(200);
      const issued = (await s.call({ method: 'POST', url: '/v1/creds/pg-gone/r' })).json() as Creds;
      expect(issued.task_id).toBeNull();
      await other.drop(); // the database custos connects to is gone; the role (cluster-wide) is not
      const revoke = await s.call({ method: 'POST', url: `/v1/leases/${issued.lease_id}/revoke` });
      expect(revoke.statusCode).toBe(503);
      const lease = (await s.call({ method: 'GET', url: `/v1/leases/${issued.lease_id}` })).json();
      expect(lease).toMatchObject({ state: 'revoking', attempts: 1, last_error: 'CUSTOS_ERR_ENGINE_UNAVAILABLE' });
      expect(JSON.stringify(lease)).not.toContain(other.url);
      await new Promise((r) => setTimeout(r, 2_100));
      expect(await s.node.services().leases.reapExpired()).toBeGreaterThanOrEqual(1);
      const again = (await s.call({ method: 'GET', url: `/v1/leases/${issued.lease_id}` })).json();
      expect(again.attempts).toBeGreaterThanOrEqual(2);
      const failing = await s.call({ method: 'GET', url: '/v1/leases?state=revoking' });
      expect(failing.json().leases.map((l: { id: string }) => l.id)).toContain(issued.lease_id);
      await dropRole(issued.username);
    } finally {
      await other.drop();
    }
  });

  it('a user created but not recorded (storage failed) is dropped, not left behind', async () => {
    expect((await s.call({ method: 'PUT', url: '/v1/engines/pg-main/roles/faulty', payload: {} })).statusCode).toBe(
      200,
    );
    const count = async () => {
      const client = new pg.Client({ connectionString: postgresUrl() });
      await client.connect();
      try {
        const { rows } = await client.query(
          "SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'custos\\_faulty\\_%'",
        );
        return rows[0].n as number;
      } finally {
        await client.end();
      }
    };
    const before = await count();
    const task = await login();
    // Fault injection on custos's own storage: the lease cannot be recorded.
    const transaction = s.storage.transaction.bind(s.storage);
    s.storage.transaction = async () => {
      throw new Error('injected storage failure');
    };
    let response: Awaited<ReturnType<typeof creds>>;
    try {
      response = await creds(task.token, 'faulty');
    } finally {
      s.storage.transaction = transaction;
    }
    expect(response.statusCode).toBeGreaterThanOrEqual(500);
    expect(response.body).not.toContain('password');
    expect(await count()).toBe(before);
  });

  it('deleting a role ends its tasks: their database users are dropped at once, not at expiry', async () => {
    await s.call({ method: 'PUT', url: '/v1/roles/db-doomed', payload: { policies: ['db-read'], max_ttl: '15m' } });
    const task = (await s.call({ method: 'POST', url: '/v1/roles/db-doomed/tasks', payload: { ttl: '10m' } })).json();
    const child = (await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: task.token, payload: {} })).json();
    const issued = (await creds(child.token)).json() as Creds;
    expect(await roleExists(issued.username)).toBe(true);
    expect((await s.call({ method: 'DELETE', url: '/v1/roles/db-doomed' })).statusCode).toBe(204);
    expect(await roleExists(issued.username)).toBe(false);
    expect((await s.call({ method: 'GET', url: `/v1/leases/${issued.lease_id}` })).json().state).toBe('revoked');
  });
});
