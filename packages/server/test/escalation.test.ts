import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './test-server.js';

// Regression tests for escalation paths found in review: each was a way for a
// narrow operator token or an agent's task to obtain more than it was granted.
describe('no escalation through roles, tasks or logins', () => {
  let s: TestServer;
  let roleAdmin: string;
  let task: string;
  beforeAll(async () => {
    s = await startTestServer('sqlite');
    const policy = async (name: string, text: string) =>
      expect((await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy: text } })).statusCode).toBe(
        200,
      );
    await policy('admin', 'permit(principal, action, resource);');
    await policy(
      'role-admin',
      'permit(principal, action in [Custos::Action::"write", Custos::Action::"issue"], resource in Custos::Path::"sys/roles/");',
    );
    // An agent whose role lets it get any credential ("issue" on everything).
    await policy('issue-anything', 'permit(principal, action == Custos::Action::"issue", resource);');
    roleAdmin = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['role-admin'], ttl: '10m' } })
    ).json().token;
    await s.call({ method: 'PUT', url: '/v1/roles/hr', payload: { policies: ['admin'] } });
    await s.call({ method: 'PUT', url: '/v1/roles/worker', payload: { policies: ['issue-anything'], auth: ['cert'] } });
    task = (await s.call({ method: 'POST', url: '/v1/roles/worker/tasks', payload: { ttl: '5m' } })).json().token;
  });
  afterAll(async () => {
    await s?.close();
  });

  it('an operator may attach to a role only policies it holds itself', async () => {
    const escalate = await s.call({
      method: 'PUT',
      url: '/v1/roles/evil',
      token: roleAdmin,
      payload: { policies: ['admin'] },
    });
    expect(escalate.statusCode).toBe(403);
    const own = await s.call({
      method: 'PUT',
      url: '/v1/roles/ok',
      token: roleAdmin,
      payload: { policies: ['role-admin'] },
    });
    expect(own.statusCode).toBe(200);
  });

  it('a task cannot start root tasks, bootstrap tokens or certificates of any role, nor change configuration', async () => {
    for (const [method, url, payload] of [
      ['POST', '/v1/roles/hr/tasks', {}],
      ['POST', '/v1/roles/hr/bootstrap', {}],
      ['POST', '/v1/roles/worker/certs', {}],
      ['PUT', '/v1/roles/hr', { policies: ['admin'] }],
      ['PUT', '/v1/policies/x', { policy: 'permit(principal, action, resource);' }],
    ] as const) {
      const response = await s.call({ method, url, token: task, payload });
      expect(response.statusCode, url).toBe(403);
    }
  });

  it('a role open to JWT logins must bind claims; login refusals reveal nothing about roles', async () => {
    const unbound = await s.call({ method: 'PUT', url: '/v1/roles/ci', payload: { policies: [], auth: ['jwt'] } });
    expect(unbound.json().error.code).toBe('CUSTOS_ERR_VALIDATION');
    const noJwt = await s.call({
      method: 'POST',
      url: '/v1/auth/jwt/login',
      token: null,
      payload: { role: 'worker', jwt: 'x.y.z' },
    });
    expect(noJwt.json().error.code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
  });

  it('engine names cannot shadow reserved path roots', async () => {
    const engine = await s.call({
      method: 'PUT',
      url: '/v1/engines/kv',
      payload: { type: 'postgres', url: 'postgres://127.0.0.1:1/x' },
    });
    expect(engine.statusCode).toBe(400);
  });

  it('revoking a token revokes the tokens it created', async () => {
    await s.call({
      method: 'PUT',
      url: '/v1/policies/maker',
      payload: {
        policy: 'permit(principal, action == Custos::Action::"write", resource == Custos::Path::"sys/tokens");',
      },
    });
    const parent = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['maker'], ttl: '10m' } })
    ).json();
    const child = (
      await s.call({
        method: 'POST',
        url: '/v1/auth/token/create',
        token: parent.token,
        payload: { policies: ['maker'], ttl: '5m' },
      })
    ).json();
    expect((await s.call({ method: 'GET', url: '/v1/auth/token/self', token: child.token })).statusCode).toBe(200);
    await s.call({ method: 'POST', url: '/v1/auth/token/revoke-accessor', payload: { accessor: parent.accessor } });
    expect((await s.call({ method: 'GET', url: '/v1/auth/token/self', token: child.token })).statusCode).toBe(401);
  });

  it('an operator policy can grant one task by id (the path checked is the path audited)', async () => {
    const one = (await s.call({ method: 'POST', url: '/v1/roles/worker/tasks', payload: { ttl: '5m' } })).json();
    const other = (await s.call({ method: 'POST', url: '/v1/roles/worker/tasks', payload: { ttl: '5m' } })).json();
    await s.call({
      method: 'PUT',
      url: '/v1/policies/one-task',
      payload: {
        policy: `permit(principal, action == Custos::Action::"read", resource == Custos::Path::"sys/tasks/${one.task_id}");`,
      },
    });
    const token = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['one-task'], ttl: '5m' } })
    ).json().token;
    expect((await s.call({ method: 'GET', url: `/v1/tasks/${one.task_id}`, token })).statusCode).toBe(200);
    expect((await s.call({ method: 'GET', url: `/v1/tasks/${other.task_id}`, token })).statusCode).toBe(403);
  });
});
