import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../test-support/postgres.js';
import { type Backend, fakeSecret, startTestServer, type TestServer } from './test-server.js';

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];

const financeRead = `
// Read and list everything below kv/finance/, nothing else.
permit(principal, action in [Custos::Action::"read", Custos::Action::"list"], resource in Custos::Path::"kv/finance/");
forbid(principal, action, resource in Custos::Path::"kv/finance/locked/");
`;

describe.each(backends)('policies and scoped tokens on %s', (backend) => {
  let s: TestServer;
  let scoped: string;
  beforeAll(async () => {
    s = await startTestServer(backend);
    const written = await s.call({ method: 'PUT', url: '/v1/policies/finance-read', payload: { policy: financeRead } });
    expect(written.statusCode).toBe(200);
    const created = await s.call({
      method: 'POST',
      url: '/v1/auth/token/create',
      payload: { policies: ['finance-read'], ttl: '1h', display_name: 'analyst' },
    });
    expect(created.statusCode).toBe(200);
    scoped = created.json().token;
    for (const path of ['kv/finance/api', 'kv/finance/locked/key', 'kv/hr/payroll']) {
      await s.call({ method: 'PUT', url: `/v1/secrets/data/${path}`, payload: { data: { k: fakeSecret() } } });
    }
  });
  afterAll(async () => {
    await s?.close();
  });

  it('grants what the policy permits and nothing else (default deny)', async () => {
    const read = (path: string) => s.call({ method: 'GET', url: `/v1/secrets/data/${path}`, token: scoped });
    expect((await read('kv/finance/api')).statusCode).toBe(200);
    expect((await read('kv/hr/payroll')).json().error.code).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    // forbid overrides permit
    expect((await read('kv/finance/locked/key')).statusCode).toBe(403);
    const write = await s.call({
      method: 'PUT',
      url: '/v1/secrets/data/kv/finance/api',
      token: scoped,
      payload: { data: { k: fakeSecret() } },
    });
    expect(write.statusCode).toBe(403);
    const list = await s.call({ method: 'GET', url: '/v1/secrets/list/kv/finance/', token: scoped });
    expect(list.json().keys.sort()).toEqual(['api', 'locked/']);
    // no admin rights: cannot read policies or create tokens
    expect((await s.call({ method: 'GET', url: '/v1/policies', token: scoped })).statusCode).toBe(403);
  });

  it('a token cannot mint a token with policies it does not hold', async () => {
    await s.call({
      method: 'PUT',
      url: '/v1/policies/token-maker',
      payload: {
        policy: 'permit(principal, action == Custos::Action::"write", resource == Custos::Path::"sys/tokens");',
      },
    });
    const maker = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['token-maker'], ttl: '10m' } })
    ).json().token as string;
    const escalate = await s.call({
      method: 'POST',
      url: '/v1/auth/token/create',
      token: maker,
      payload: { policies: ['finance-read'], ttl: '1h' },
    });
    expect(escalate.statusCode).toBe(403);
    const same = await s.call({
      method: 'POST',
      url: '/v1/auth/token/create',
      token: maker,
      payload: { policies: ['token-maker'], ttl: '1h' },
    });
    expect(same.statusCode).toBe(200);
    // it may not outlive its creator
    expect(Date.parse(same.json().expire_time) - Date.now()).toBeLessThanOrEqual(10 * 60_000 + 1_000);
  });

  it('refuses an invalid policy with a useful detail and stores nothing', async () => {
    const bad = await s.call({ method: 'PUT', url: '/v1/policies/broken', payload: { policy: 'permit(principal,' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('CUSTOS_ERR_INVALID_POLICY');
    expect((await s.call({ method: 'GET', url: '/v1/policies/broken' })).statusCode).toBe(404);
  });

  it('a deleted policy stops granting at once; a revoked token stops working at once', async () => {
    await s.call({
      method: 'PUT',
      url: '/v1/policies/temp',
      payload: { policy: 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/hr/");' },
    });
    const created = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['temp'], ttl: '1h' } })
    ).json();
    const read = () => s.call({ method: 'GET', url: '/v1/secrets/data/kv/hr/payroll', token: created.token });
    expect((await read()).statusCode).toBe(200);
    await s.call({ method: 'DELETE', url: '/v1/policies/temp' });
    expect((await read()).statusCode).toBe(403);
    await s.call({ method: 'POST', url: '/v1/auth/token/revoke-accessor', payload: { accessor: created.accessor } });
    expect((await read()).statusCode).toBe(401);
  });

  it('policy context: a time window in UTC', async () => {
    const hour = new Date().getUTCHours();
    const other = (hour + 12) % 24;
    await s.call({
      method: 'PUT',
      url: '/v1/policies/window',
      payload: {
        policy: `permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/hr/") when { context.now.hour >= ${other} && context.now.hour < ${other + 1} };`,
      },
    });
    const token = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['window'], ttl: '1h' } })
    ).json().token;
    const read = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/hr/payroll', token });
    expect(read.statusCode).toBe(403);
  });
});
