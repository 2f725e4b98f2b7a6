import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents, fakeSecret, startTestServer, type TestServer } from './test-server.js';

// `/v1/upstreams`: operator configuration of the APIs the credential proxy
// calls. Real SQLite; the stored record is barrier ciphertext like engines.

describe('upstreams', () => {
  let s: TestServer;
  const put = (name: string, body: Record<string, unknown>, token?: string) =>
    s.call({ method: 'PUT', url: `/v1/upstreams/${name}`, payload: body, ...(token ? { token } : {}) });
  const valid = {
    base_url: 'https://127.0.0.1:9/v1',
    secret: 'kv/llm/openai#api_key',
    inject: ['header:Authorization=Bearer {{value}}'],
    allow_hosts: ['127.0.0.1:9'],
  };
  const operator = async (policy: string) => {
    const name = `p${Math.random().toString(36).slice(2, 8)}`;
    expect((await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy } })).statusCode).toBe(200);
    const r = await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: [name], ttl: '10m' } });
    expect(r.statusCode, r.body).toBe(200);
    return r.json().token as string;
  };

  beforeAll(async () => {
    s = await startTestServer('sqlite', { egress: { allow: [] } });
    await s.call({
      method: 'PUT',
      url: '/v1/secrets/data/kv/llm/openai',
      payload: { data: { api_key: fakeSecret() } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('add, show, list and delete: the view is the configuration as written, never a value', async () => {
    const added = await put('openai', {
      ...valid,
      inject: ['header:Authorization=Bearer {{value}}', 'query:key={{value}}'],
      allow_paths: ['/chat/*'],
      allow_methods: ['post'],
    });
    expect(added.statusCode, added.body).toBe(200);
    expect(added.json()).toMatchObject({
      name: 'openai',
      base_url: 'https://127.0.0.1:9/v1',
      secret: 'kv/llm/openai#api_key',
      inject: ['header:authorization=Bearer {{value}}', 'query:key={{value}}'],
      allow_hosts: ['127.0.0.1:9'],
      allow_paths: ['/chat/*'],
      allow_methods: ['POST'],
    });
    expect((await s.call({ method: 'GET', url: '/v1/upstreams/openai' })).json()).toEqual(added.json());
    expect((await s.call({ method: 'GET', url: '/v1/upstreams' })).json()).toEqual({ keys: ['openai'] });
    // Stored sealed: the base URL is not in the database file in clear.
    const { existsSync, readFileSync } = await import('node:fs');
    for (const file of [`${s.dir}/custos.db`, `${s.dir}/custos.db-wal`].filter((f) => existsSync(f))) {
      expect(readFileSync(file).includes('127.0.0.1:9/v1'), file).toBe(false);
    }
    expect((await s.call({ method: 'DELETE', url: '/v1/upstreams/openai' })).statusCode).toBe(204);
    const gone = await s.call({ method: 'GET', url: '/v1/upstreams/openai' });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe('CUSTOS_ERR_UPSTREAM_NOT_FOUND');
  });

  it('refuses each malformed part with its own code, and writes nothing', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ base_url: 'http://api.example.com' }, 'CUSTOS_ERR_UPSTREAM_URL_INVALID'],
      [{ base_url: 'https://u:p@127.0.0.1:9' }, 'CUSTOS_ERR_UPSTREAM_URL_INVALID'],
      [{ base_url: 'https://127.0.0.1:9/v1?key=x' }, 'CUSTOS_ERR_UPSTREAM_URL_INVALID'],
      [{ base_url: 'https://127.0.0.1:9/v1/../admin' }, 'CUSTOS_ERR_UPSTREAM_URL_INVALID'],
      [{ inject: ['header:Host={{value}}'] }, 'CUSTOS_ERR_UPSTREAM_INJECT_INVALID'],
      [{ inject: ['header:X-A=a\r\nX-B: {{value}}'] }, 'CUSTOS_ERR_UPSTREAM_INJECT_INVALID'],
      [{ inject: ['header:Authorization=Bearer'] }, 'CUSTOS_ERR_UPSTREAM_INJECT_INVALID'],
      [{ allow_paths: ['/v1/../*'] }, 'CUSTOS_ERR_UPSTREAM_ALLOW_INVALID'],
      [{ allow_methods: ['CONNECT'] }, 'CUSTOS_ERR_UPSTREAM_ALLOW_INVALID'],
      [{ allow_hosts: ['unix:/run/x'] }, 'CUSTOS_ERR_UPSTREAM_ALLOW_INVALID'],
      [{ secret: 'kv/llm/openai' }, 'CUSTOS_ERR_UPSTREAM_SECRET_INVALID'],
      [{ secret: 'sys/x#y' }, 'CUSTOS_ERR_UPSTREAM_SECRET_INVALID'],
    ];
    for (const [change, code] of cases) {
      const r = await put('bad', { ...valid, ...change });
      expect(r.statusCode, JSON.stringify(change)).toBe(400);
      expect(r.json().error.code, JSON.stringify(change)).toBe(code);
    }
    expect((await s.call({ method: 'GET', url: '/v1/upstreams/bad' })).statusCode).toBe(404);
  });

  it('checks the base URL against the egress policy this upstream will use: loopback needs its allow_hosts', async () => {
    const refused = await put('local', { ...valid, allow_hosts: [] });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
    // Another upstream's allow entry widens nothing for this one.
    expect((await put('other', valid)).statusCode).toBe(200);
    expect((await put('local', { ...valid, allow_hosts: ['127.0.0.1:10'] })).json().error.code).toBe(
      'CUSTOS_ERR_EGRESS_REFUSED',
    );
  });

  it('needs write on sys/upstreams/NAME, read on the secret, and admin on sys/egress for allow_hosts', async () => {
    const writeOnly = await operator(
      'permit(principal, action == Custos::Action::"write", resource in Custos::Path::"sys/upstreams/");',
    );
    const denied = await put('w1', valid, writeOnly);
    expect(denied.statusCode).toBe(403);
    const withRead = await operator(
      'permit(principal, action == Custos::Action::"write", resource in Custos::Path::"sys/upstreams/");\n' +
        'permit(principal, action == Custos::Action::"read", resource == Custos::Path::"kv/llm/openai");',
    );
    // Reads the key but may not widen egress into loopback.
    expect((await put('w1', valid, withRead)).statusCode).toBe(403);
    const full = await operator(
      'permit(principal, action == Custos::Action::"write", resource in Custos::Path::"sys/upstreams/");\n' +
        'permit(principal, action == Custos::Action::"read", resource == Custos::Path::"kv/llm/openai");\n' +
        'permit(principal, action == Custos::Action::"admin", resource == Custos::Path::"sys/egress");',
    );
    expect((await put('w1', valid, full)).statusCode).toBe(200);
    const reasons = (await auditEvents(s.storage))
      .filter((e) => (e.request as { route?: string }).route === '/v1/upstreams/:name' && e.status === 403)
      .map((e) => e.reason);
    expect(reasons).toEqual(
      expect.arrayContaining(['upstream_requires_secret_read', 'upstream_allow_hosts_requires_egress_admin']),
    );
  });

  it('a task can never manage upstreams, whatever its policies say', async () => {
    await s.call({
      method: 'PUT',
      url: '/v1/policies/everything',
      payload: { policy: 'permit(principal, action, resource);' },
    });
    await s.call({ method: 'PUT', url: '/v1/roles/greedy', payload: { policies: ['everything'], max_ttl: '5m' } });
    const task = (await s.call({ method: 'POST', url: '/v1/roles/greedy/tasks', payload: { ttl: '5m' } })).json();
    expect((await put('t1', valid, task.token)).statusCode).toBe(403);
    expect((await s.call({ method: 'DELETE', url: '/v1/upstreams/other', token: task.token })).statusCode).toBe(403);
    expect((await s.call({ method: 'GET', url: '/v1/upstreams/other' })).statusCode).toBe(200);
  });
});
