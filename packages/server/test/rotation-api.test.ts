import type { AddressInfo } from 'node:net';
import { createEngine } from '@custos/engines';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../test-support/postgres.js';
import { fakeSecret, putDatabaseRotation, startTestServer, type TestServer } from './test-server.js';

interface Task {
  token: string;
  task_id: string;
}

describe.skipIf(!hasPostgres())('rotation with stages and task pinning', () => {
  let s: TestServer;
  let target: TestDatabase;

  const login = async (): Promise<Task> => {
    const created = await s.call({ method: 'POST', url: '/v1/roles/pipeline/bootstrap', payload: { ttl: '5m' } });
    const response = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: created.json().token, ttl: '10m' },
    });
    expect(response.statusCode).toBe(200);
    return response.json();
  };
  const delegate = async (parent: Task): Promise<Task> => {
    const response = await s.call({
      method: 'POST',
      url: '/v1/tasks/delegate',
      token: parent.token,
      payload: { scope: 'read:kv/pipeline/*', ttl: '5m' },
    });
    expect(response.statusCode).toBe(200);
    return response.json();
  };
  const read = async (token: string | undefined, path: string) => {
    const response = await s.call({ method: 'GET', url: `/v1/secrets/data/${path}`, ...(token ? { token } : {}) });
    expect(response.statusCode).toBe(200);
    return response.json() as { data: Record<string, string>; metadata: { version: number } };
  };

  beforeAll(async () => {
    target = await createTestDatabase();
    s = await startTestServer('sqlite', { engineFactory: createEngine });
    await s.call({
      method: 'PUT',
      url: '/v1/policies/pipeline-read',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/pipeline/");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    const role = await s.call({
      method: 'PUT',
      url: '/v1/roles/pipeline',
      payload: { policies: ['pipeline-read'], max_ttl: '15m', max_depth: 2, auth: ['bootstrap'] },
    });
    expect(role.statusCode).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
    await target?.drop();
  });

  it('a rotation mid-pipeline is invisible to the running tasks and picked up by new ones', async () => {
    const path = 'kv/pipeline/warehouse';
    const v1 = fakeSecret('v1');
    await s.call({ method: 'PUT', url: `/v1/secrets/data/${path}`, payload: { data: { password: v1 } } });
    const running = await login();
    expect((await read(running.token, path)).data.password).toBe(v1);

    const rotated = await s.call({ method: 'POST', url: `/v1/secrets/rotate/${path}` });
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json()).toMatchObject({ path, version: 2, previous: 1 });

    // The running pipeline, including a child spawned after the rotation, still sees v1.
    expect((await read(running.token, path)).data.password).toBe(v1);
    const child = await delegate(running);
    expect((await read(child.token, path)).data.password).toBe(v1);
    // A new pipeline and the operator see the new current version.
    const fresh = await login();
    const v2 = (await read(fresh.token, path)).data.password;
    expect(v2).not.toBe(v1);
    expect((await read(undefined, path)).data.password).toBe(v2);
    const meta = await s.call({ method: 'GET', url: `/v1/secrets/metadata/${path}` });
    expect(meta.json().stages).toMatchObject({ current: 2, previous: 1, pending: null });

    // When the pipeline ends, its pins go with it.
    await s.call({ method: 'POST', url: `/v1/tasks/${running.task_id}/end` });
    const pins = await s.storage.entries.list('secret.pin', `${running.task_id}#`);
    expect(pins).toEqual([]);
  });

  it('rotates a PostgreSQL user’s password through the engine (ALTER ROLE)', async () => {
    const admin = new pg.Client({ connectionString: target.url });
    await admin.connect();
    const initial = `pw_${fakeSecret('pg').replace(/[^a-z0-9]/g, '')}`;
    const user = `app_static_${Date.now().toString(36)}`;
    await admin.query(`CREATE ROLE ${user} LOGIN PASSWORD '${initial}'`);
    const before = (
      await admin.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user])
    ).rows[0]?.rolpassword;
    try {
      expect(
        (await s.call({ method: 'PUT', url: '/v1/engines/pg-main', payload: { type: 'postgres', url: target.url } }))
          .statusCode,
      ).toBe(200);
      const path = 'kv/pipeline/pg-static';
      const policy = await putDatabaseRotation(
        s,
        path,
        { engine: 'pg-main', username: user, password: initial },
        { every: '1h', grace: '5m' },
      );
      expect(policy.statusCode).toBe(200);
      expect(policy.json()).toMatchObject({ every_ms: 3_600_000, grace_ms: 300_000 });
      expect((await s.call({ method: 'POST', url: `/v1/secrets/rotate/${path}` })).statusCode).toBe(200);
      const { password } = (await read(undefined, path)).data;
      expect(password).not.toBe(initial);
      // The test server trusts local connections, so a login proves nothing:
      // the stored verifier changing does (and the new one matches the password).
      const { rows } = await admin.query<{ rolpassword: string }>(
        'SELECT rolpassword FROM pg_authid WHERE rolname = $1',
        [user],
      );
      expect(rows[0]?.rolpassword).toBeTruthy();
      expect(rows[0]?.rolpassword).not.toBe(before);
      expect(rows[0]?.rolpassword).not.toContain(password as string);
    } finally {
      await admin.query(`DROP ROLE IF EXISTS ${user}`);
      await admin.end();
    }
  });

  it('tells subscribers of rotations over server-sent events, only for paths they may read', async () => {
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
    const task = await login();
    const controller = new AbortController();
    const response = await fetch(`${base}/v1/events`, {
      headers: { authorization: `Bearer ${task.token}` },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const until = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    await until(': subscribed');
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/hidden/x', payload: { data: { v: fakeSecret() } } });
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/pipeline/events', payload: { data: { v: fakeSecret() } } });
    await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/hidden/x' });
    await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/pipeline/events' });
    await until('kv/pipeline/events');
    controller.abort();
    expect(text).toContain('event: secret.rotated');
    expect(text).toContain('"path":"kv/pipeline/events","version":2');
    expect(text).not.toContain('kv/hidden/x');
  });
});
