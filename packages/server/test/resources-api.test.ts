import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditEvents,
  fakeSecret,
  startRoleTask,
  startTestServer,
  type TestServer,
  tokenExchange,
} from './test-server.js';

/** The claims of a compact JWS, unverified (the tests check what custos signed). */
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());

// `/v1/resources` and RFC 8707 `resource` in the token exchange: registered
// resources, tokens whose `aud` is one of them, and their RFC 9728
// metadata. Real SQLite, real server; the attack cases are in
// adversarial/resource-audience.test.ts.
describe('registered resources', () => {
  let s: TestServer;
  const put = (name: string, body: Record<string, unknown>, token?: string) =>
    s.call({ method: 'PUT', url: `/v1/resources/${name}`, payload: body, ...(token ? { token } : {}) });
  const start = (scope?: string) => startRoleTask(s, 'rs-agent', scope);
  const exchange = (params: Record<string, string | string[]>) => tokenExchange(s, params);

  beforeAll(async () => {
    s = await startTestServer('sqlite');
    await s.call({
      method: 'PUT',
      url: '/v1/policies/rs-agent',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/rs/");\n' +
          'permit(principal, action == Custos::Action::"use", resource in Custos::Path::"mcp/");\n' +
          'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"resource/github-mcp");\n' +
          'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"resource/billing");\n' +
          'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"resource/shortlived");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    const role = await s.call({
      method: 'PUT',
      url: '/v1/roles/rs-agent',
      payload: { policies: ['rs-agent'], max_ttl: '15m', max_depth: 3 },
    });
    expect(role.statusCode, role.body).toBe(200);
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/rs/x', payload: { data: { k: fakeSecret() } } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('add, show, list and delete; the URL is stored in canonical form and sealed', async () => {
    const added = await put('github-mcp', {
      url: 'HTTPS://MCP.Example.COM:443/mcp',
      scopes: ['use:mcp/github/*', 'use:mcp/github/*'],
      description: 'GitHub tools for agents',
    });
    expect(added.statusCode, added.body).toBe(200);
    expect(added.json()).toMatchObject({
      name: 'github-mcp',
      url: 'https://mcp.example.com/mcp',
      scopes: ['use:mcp/github/*'],
      description: 'GitHub tools for agents',
    });
    expect((await s.call({ method: 'GET', url: '/v1/resources/github-mcp' })).json()).toEqual(added.json());
    expect((await s.call({ method: 'GET', url: '/v1/resources' })).json()).toEqual({ keys: ['github-mcp'] });
    const { existsSync, readFileSync } = await import('node:fs');
    for (const file of [`${s.dir}/custos.db`, `${s.dir}/custos.db-wal`].filter((f) => existsSync(f))) {
      expect(readFileSync(file).includes('mcp.example.com'), file).toBe(false);
    }
    expect((await put('temp', { url: 'https://temp.example' })).statusCode).toBe(200);
    expect((await s.call({ method: 'DELETE', url: '/v1/resources/temp' })).statusCode).toBe(204);
    const gone = await s.call({ method: 'GET', url: '/v1/resources/temp' });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe('CUSTOS_ERR_RESOURCE_NOT_FOUND');
  });

  it('refuses malformed registrations with their own codes, and writes nothing', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ url: 'http://mcp.example.com' }, 'CUSTOS_ERR_RESOURCE_URL_INVALID'],
      [{ url: 'mcp.example.com' }, 'CUSTOS_ERR_RESOURCE_URL_INVALID'],
      [{ url: 'https://mcp.example.com#frag' }, 'CUSTOS_ERR_RESOURCE_URL_INVALID'],
      [{ url: 'https://mcp.example.com/?a=1' }, 'CUSTOS_ERR_RESOURCE_URL_INVALID'],
      [{ url: 'https://user@mcp.example.com' }, 'CUSTOS_ERR_RESOURCE_URL_INVALID'],
      [{ url: 'https://mcp.example.com/a/../b' }, 'CUSTOS_ERR_RESOURCE_URL_INVALID'],
      [{ url: 'https://mcp.example.com/%2e%2e/b' }, 'CUSTOS_ERR_RESOURCE_URL_INVALID'],
      [{ url: 'https://mcp.example.com//b' }, 'CUSTOS_ERR_RESOURCE_URL_INVALID'],
      [{ url: 'https://other.example', scopes: ['fly:mcp/*'] }, 'CUSTOS_ERR_RESOURCE_SCOPE_INVALID'],
      [{ url: 'https://other.example', scopes: ['use:a use:b'] }, 'CUSTOS_ERR_RESOURCE_SCOPE_INVALID'],
      [{ url: 'https://other.example', description: 'two\nlines' }, 'CUSTOS_ERR_VALIDATION'],
      // One URL, one resource: the token would be the same for both names.
      [{ url: 'https://mcp.example.com/mcp' }, 'CUSTOS_ERR_VALIDATION'],
    ];
    for (const [body, code] of cases) {
      const r = await put('bad', body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.code, JSON.stringify(body)).toBe(code);
    }
    expect((await s.call({ method: 'GET', url: '/v1/resources/bad' })).statusCode).toBe(404);
  });

  it('exchanges a task token for a child whose aud is the resource URL alone, scoped within the resource', async () => {
    const parent = await start();
    const r = await exchange({ subject_token: parent.token, resource: 'https://mcp.example.com/mcp' });
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    // No scope asked: the resource's registered scopes.
    expect(body).toMatchObject({ scope: 'use:mcp/github/*', aud: 'https://mcp.example.com/mcp' });
    const claims = claimsOf(body.access_token);
    expect(claims.aud).toBe('https://mcp.example.com/mcp');
    expect(claims.parent_task_id).toBe(parent.task_id);
    // A narrower scope within the resource's is fine; one outside it is not,
    // even when the parent holds it.
    const narrow = await exchange({
      subject_token: parent.token,
      resource: 'https://mcp.example.com/mcp',
      scope: 'use:mcp/github/issues',
    });
    expect(narrow.json().scope).toBe('use:mcp/github/issues');
    const wider = await exchange({
      subject_token: parent.token,
      resource: 'https://mcp.example.com/mcp',
      scope: 'read:kv/rs/x',
    });
    expect(wider.statusCode).toBe(400);
    expect(wider.json()).toMatchObject({ error: 'invalid_scope', custos_code: 'CUSTOS_ERR_SCOPE_EXCEEDS_RESOURCE' });
    // The parent's bound still holds: a parent without the resource's scope cannot mint it.
    const narrowParent = await start('read:kv/rs/* use:resource/github-mcp delegate:sys/tasks/*');
    const exceeds = await exchange({ subject_token: narrowParent.token, resource: 'https://mcp.example.com/mcp' });
    expect(exceeds.json()).toMatchObject({ error: 'invalid_scope', custos_code: 'CUSTOS_ERR_SCOPE_EXCEEDS_PARENT' });
  });

  it('a resource without scopes takes the scope asked, within the parent’s', async () => {
    expect((await put('billing', { url: 'http://127.0.0.1:9/billing' })).statusCode).toBe(200);
    const parent = await start();
    const r = await exchange({
      subject_token: parent.token,
      resource: 'http://127.0.0.1:9/billing',
      scope: 'read:kv/rs/x',
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(claimsOf(r.json().access_token)).toMatchObject({ aud: 'http://127.0.0.1:9/billing', scope: 'read:kv/rs/x' });
  });

  it('custos refuses a resource token as a credential, and introspection reports its audience', async () => {
    const parent = await start();
    const child = (await exchange({ subject_token: parent.token, resource: 'https://mcp.example.com/mcp' })).json();
    // Not at custos's API, not as a subject token: a token the MCP server received cannot be replayed here.
    for (const request of [
      { method: 'GET' as const, url: `/v1/tasks/${child.task_id}` },
      { method: 'GET' as const, url: '/v1/secrets/data/kv/rs/x' },
      { method: 'POST' as const, url: `/v1/tasks/${child.task_id}/end` },
    ]) {
      const r = await s.call({ ...request, token: child.access_token });
      expect(r.statusCode, request.url).toBe(401);
    }
    const again = await exchange({ subject_token: child.access_token, scope: 'use:mcp/github/issues' });
    expect(again.statusCode).toBe(400);
    expect(again.json().custos_code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    const refused = (await auditEvents(s.storage)).filter(
      (e) => e.status === 401 && (e.request as { route?: string }).route === '/v1/tasks/:id',
    );
    expect(refused.map((e) => e.reason)).toContain('wrong_audience');
    // The exchange's audit event names the child and the resource it is for.
    const minted = (await auditEvents(s.storage)).find(
      (e) => (e.details as { issued_task?: string }).issued_task === child.task_id,
    );
    expect(minted?.details).toMatchObject({ audience: 'https://mcp.example.com/mcp' });
    // The resource server introspects it with its own custos token (here the parent's).
    const introspect = (token: string) =>
      s.call({
        method: 'POST',
        url: '/v1/oauth/introspect',
        token: parent.token,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ token }).toString(),
      });
    expect((await introspect(child.access_token)).json()).toMatchObject({
      active: true,
      aud: 'https://mcp.example.com/mcp',
      task_id: child.task_id,
      scope: 'use:mcp/github/*',
    });
    expect((await introspect(parent.token)).json()).toMatchObject({ active: true, aud: 'custos' });
    // The parent still governs the child: ending the parent ends it.
    expect(
      (await s.call({ method: 'POST', url: `/v1/tasks/${parent.task_id}/revoke`, token: parent.token })).statusCode,
    ).toBe(200);
    const asRoot = await s.call({
      method: 'POST',
      url: '/v1/oauth/introspect',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: child.access_token }).toString(),
    });
    expect(asRoot.json()).toEqual({ active: false });
  });

  it('a resource token stays inactive at introspection once its resource is deleted', async () => {
    expect((await put('shortlived', { url: 'https://short.example/api' })).statusCode).toBe(200);
    const parent = await start();
    const child = (
      await exchange({ subject_token: parent.token, resource: 'https://short.example/api', scope: 'read:kv/rs/x' })
    ).json();
    expect(child.aud).toBe('https://short.example/api');
    expect((await s.call({ method: 'DELETE', url: '/v1/resources/shortlived' })).statusCode).toBe(204);
    const r = await s.call({
      method: 'POST',
      url: '/v1/oauth/introspect',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: child.access_token }).toString(),
    });
    expect(r.json()).toEqual({ active: false });
    // …and no new exchange for it.
    const again = await exchange({ subject_token: parent.token, resource: 'https://short.example/api' });
    expect(again.json()).toMatchObject({ error: 'invalid_target' });
  });

  it('serves RFC 9728 metadata for a registered resource, public and cacheable', async () => {
    const r = await s.call({ method: 'GET', url: '/.well-known/oauth-protected-resource/github-mcp', token: null });
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe('public, max-age=60');
    const issuer = (await s.call({ method: 'GET', url: '/.well-known/oauth-authorization-server', token: null })).json()
      .issuer;
    expect(r.json()).toEqual({
      resource: 'https://mcp.example.com/mcp',
      authorization_servers: [issuer],
      scopes_supported: ['use:mcp/github/*'],
      bearer_methods_supported: ['header'],
      resource_name: 'GitHub tools for agents',
    });
    const bare = (
      await s.call({ method: 'GET', url: '/.well-known/oauth-protected-resource/billing', token: null })
    ).json();
    expect(bare).toEqual({
      resource: 'http://127.0.0.1:9/billing',
      authorization_servers: [issuer],
      bearer_methods_supported: ['header'],
    });
  });

  it('managing resources: write and delete by operators with the policy only; tasks never', async () => {
    await s.call({
      method: 'PUT',
      url: '/v1/policies/everything',
      payload: { policy: 'permit(principal, action, resource);' },
    });
    await s.call({ method: 'PUT', url: '/v1/roles/greedy', payload: { policies: ['everything'], max_ttl: '5m' } });
    const task = (await s.call({ method: 'POST', url: '/v1/roles/greedy/tasks', payload: { ttl: '5m' } })).json();
    expect((await put('by-task', { url: 'https://task.example' }, task.token)).statusCode).toBe(403);
    expect((await s.call({ method: 'DELETE', url: '/v1/resources/billing', token: task.token })).statusCode).toBe(403);
    const policy = 'permit(principal, action == Custos::Action::"write", resource in Custos::Path::"sys/resources/");';
    await s.call({ method: 'PUT', url: '/v1/policies/rs-writer', payload: { policy } });
    const writer = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['rs-writer'], ttl: '10m' } })
    ).json().token as string;
    expect((await put('by-writer', { url: 'https://writer.example' }, writer)).statusCode).toBe(200);
    expect((await s.call({ method: 'DELETE', url: '/v1/resources/by-writer', token: writer })).statusCode).toBe(403);
    await s.call({
      method: 'PUT',
      url: '/v1/policies/rs-reader',
      payload: { policy: 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/rs/");' },
    });
    const nobody = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['rs-reader'], ttl: '10m' } })
    ).json().token as string;
    expect((await put('by-nobody', { url: 'https://nobody.example' }, nobody)).statusCode).toBe(403);
    expect((await s.call({ method: 'GET', url: '/v1/resources/billing', token: nobody })).statusCode).toBe(403);
  });
});
