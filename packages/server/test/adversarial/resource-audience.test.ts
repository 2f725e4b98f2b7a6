/**
 * Adversarial suite — resource audiences (RFC 8707, RFC 9728).
 *
 * The attacker holds a task token, or a token minted for a resource server,
 * or is that resource server, or has no token at all. It tries to register a
 * resource without being an operator, to get a token for a resource it may
 * not use (or one spelled to look registered), to make one token good at
 * two places, to replay a resource token at custos, and to learn from the
 * public metadata what is registered. Each test is named after the promise
 * it keeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditEvents,
  fakeSecret,
  startRoleTask,
  startTestServer,
  type TestServer,
  tokenExchange,
} from '../test-server.js';
import { watchWrites } from './adversarial-support.js';

const MCP = 'https://mcp.example.com/mcp';
const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;

describe('resource audiences', () => {
  let s: TestServer;
  const { log, wrap } = watchWrites();
  const start = (role = 'ra-agent', scope?: string) => startRoleTask(s, role, scope);
  const exchange = (params: Record<string, string | string[]>) => tokenExchange(s, params);

  beforeAll(async () => {
    s = await startTestServer('sqlite', { wrapStorage: wrap });
    await s.call({
      method: 'PUT',
      url: '/v1/policies/ra-agent',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/ra/");\n' +
          'permit(principal, action == Custos::Action::"use", resource in Custos::Path::"tools/");\n' +
          'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"resource/mcp");\n' +
          'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"resource/other");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    await s.call({ method: 'PUT', url: '/v1/roles/ra-agent', payload: { policies: ['ra-agent'], max_ttl: '15m' } });
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/ra/x', payload: { data: { k: fakeSecret() } } });
    for (const [name, url] of [
      ['mcp', MCP],
      ['other', 'https://other.example.com'],
      ['forbidden', 'https://forbidden.example.com'],
    ]) {
      const r = await s.call({
        method: 'PUT',
        url: `/v1/resources/${name}`,
        payload: { url, scopes: ['use:tools/*'] },
      });
      expect(r.statusCode, r.body).toBe(200);
    }
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a task can never register, replace or delete a resource, whatever its policies allow', async () => {
    await s.call({
      method: 'PUT',
      url: '/v1/policies/all',
      payload: { policy: 'permit(principal, action, resource);' },
    });
    await s.call({ method: 'PUT', url: '/v1/roles/greedy', payload: { policies: ['all'], max_ttl: '5m' } });
    const greedy = await start('greedy');
    const writes = await log.during(async () => {
      for (const [method, url, payload] of [
        ['PUT', '/v1/resources/evil', { url: 'https://evil.example' }],
        ['PUT', '/v1/resources/mcp', { url: 'https://evil.example/mcp' }],
        ['DELETE', '/v1/resources/mcp', undefined],
      ] as const) {
        const r = await s.call({ method, url, token: greedy.token, ...(payload ? { payload } : {}) });
        expect(r.statusCode, `${method} ${url}`).toBe(403);
      }
    });
    expect(writes.filter((w) => w.startsWith('resource'))).toEqual([]);
    expect((await s.call({ method: 'GET', url: '/v1/resources/mcp' })).json().url).toBe(MCP);
    expect((await s.call({ method: 'GET', url: '/v1/resources/evil' })).statusCode).toBe(404);
  });

  it('an oddly spelled resource reaches no registered resource: only RFC 3986-equivalent spellings match', async () => {
    const task = await start();
    const refused = [
      `${MCP}#frag`,
      `${MCP}#`,
      'https://mcp.example.com@evil.example/mcp',
      'https://evil.example@mcp.example.com/mcp',
      'https://@mcp.example.com/mcp',
      `${MCP}/`,
      `${MCP}?x=1`,
      `${MCP}?`,
      'https://mcp.example.com/MCP',
      'https://mcp.example.com/mcp/../mcp',
      'https://mcp.example.com/./mcp',
      'https://mcp.example.com/%6dcp',
      'https://mcp.example.com//mcp',
      'https://mcp.example.com\\mcp',
      'http://mcp.example.com/mcp',
      'https://mcp.example.com:8443/mcp',
      'https://mcp.example.com./mcp',
      'https://mcp.example.com.evil.example/mcp',
      '//mcp.example.com/mcp',
      'mcp.example.com/mcp',
      '/mcp',
      'mcp',
      '',
      'https://mcp.example.com/mcp\r\nx: y',
    ];
    for (const resource of refused) {
      const r = await exchange({ subject_token: task.token, resource });
      expect(r.statusCode, resource).toBe(400);
      expect(r.json().error, resource).toBe('invalid_target');
      expect(r.body, resource).not.toMatch(/access_token|evil\.example/);
    }
    // RFC 3986 §6.2.2–6.2.3 equivalents of the registered URL name it; the token carries the registered spelling.
    for (const resource of ['HTTPS://MCP.EXAMPLE.COM/mcp', 'https://mcp.example.com:443/mcp', MCP]) {
      const r = await exchange({ subject_token: task.token, resource });
      expect(r.statusCode, resource).toBe(200);
      expect(claimsOf(r.json().access_token).aud, resource).toBe(MCP);
    }
  });

  it('a resource the task may not use answers exactly as an unregistered one, and is audited as what it is', async () => {
    const task = await start();
    const forbidden = await exchange({ subject_token: task.token, resource: 'https://forbidden.example.com' });
    const unknown = await exchange({ subject_token: task.token, resource: 'https://unknown.example.com' });
    expect(forbidden.statusCode).toBe(400);
    expect(forbidden.body).toBe(unknown.body);
    // A scope without `use:resource/mcp` may not mint for it, even though the role may.
    const narrow = await start('ra-agent', 'use:tools/* delegate:sys/tasks/*');
    const noUse = await exchange({ subject_token: narrow.token, resource: MCP });
    expect(noUse.body).toBe(unknown.body);
    const reasons = (await auditEvents(s.storage))
      .filter((e) => (e.request as { route?: string }).route === '/v1/oauth/token' && e.status === 400)
      .map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['resource_use_denied', 'resource_not_registered']));
  });

  it('an anonymous caller learns nothing about registration from the exchange', async () => {
    const forged = `${Buffer.from('{"alg":"EdDSA"}').toString('base64url')}.e30.${'A'.repeat(86)}`;
    const known = await exchange({ subject_token: forged, resource: MCP });
    const unknown = await exchange({ subject_token: forged, resource: 'https://unknown.example.com' });
    expect(known.statusCode).toBe(400);
    expect(known.json().custos_code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    expect(known.body).toBe(unknown.body);
  });

  it('one token is never good at two places: several resources, or a resource with an audience, are refused', async () => {
    const task = await start();
    for (const params of [
      { resource: [MCP, 'https://other.example.com'] },
      { resource: [MCP, MCP] },
      { resource: MCP, audience: 'custos' },
      { resource: MCP, audience: 'https://other.example.com' },
    ]) {
      const r = await exchange({ subject_token: task.token, ...params });
      expect(r.statusCode, JSON.stringify(params)).toBe(400);
      expect(r.json().error, JSON.stringify(params)).toBe('invalid_target');
    }
  });

  it('a token minted for a resource is refused by custos everywhere a task token is accepted', async () => {
    const parent = await start();
    const child = (await exchange({ subject_token: parent.token, resource: MCP })).json();
    expect(claimsOf(child.access_token).aud).toBe(MCP);
    const writes = await log.during(async () => {
      for (const [method, url] of [
        ['GET', '/v1/secrets/data/kv/ra/x'],
        ['GET', `/v1/tasks/${child.task_id}`],
        ['GET', `/v1/tasks/${parent.task_id}`],
        ['POST', `/v1/tasks/${parent.task_id}/revoke`],
        ['POST', '/v1/tasks/self/token'],
        ['GET', '/v1/events'],
      ] as const) {
        const r = await s.call({ method, url, token: child.access_token });
        expect(r.statusCode, `${method} ${url}`).toBe(401);
      }
      // Nor as a subject token, to mint a sibling for another resource or a custos token.
      for (const params of [{}, { resource: 'https://other.example.com' }]) {
        const r = await exchange({ subject_token: child.access_token, ...params });
        expect(r.json().custos_code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
      }
    });
    // Only audit events were written: no task, no lease.
    expect(writes.filter((w) => !w.startsWith('audit'))).toEqual([]);
    expect((await s.call({ method: 'GET', url: `/v1/tasks/${parent.task_id}` })).json().state).toBe('active');
  });

  it('the metadata of an unknown or malformed name is the same 404 as any missing page, and writes nothing', async () => {
    const missing = await s.call({ method: 'GET', url: '/.well-known/no-such-page', token: null });
    const writes = await log.during(async () => {
      for (const name of ['nope', 'MCP', 'mcp.', '..', '%2e%2e', 'mcp%00', 'a'.repeat(300), 'mcp/extra', '']) {
        const r = await s.call({ method: 'GET', url: `/.well-known/oauth-protected-resource/${name}`, token: null });
        expect(r.statusCode, name).toBe(404);
        expect(r.body, name).toBe(missing.body);
        for (const header of ['content-type', 'cache-control', 'pragma']) {
          expect(r.headers[header], `${name} ${header}`).toBe(missing.headers[header]);
        }
      }
    });
    expect(writes.filter((w) => !w.startsWith('audit'))).toEqual([]);
  });

  it('the metadata reveals only what the resource server publishes: no tasks, policies or other resources', async () => {
    const r = await s.call({ method: 'GET', url: '/.well-known/oauth-protected-resource/mcp', token: null });
    expect(r.statusCode).toBe(200);
    expect(Object.keys(r.json()).sort()).toEqual(
      ['authorization_servers', 'bearer_methods_supported', 'resource', 'scopes_supported'].sort(),
    );
    expect(r.body).not.toMatch(/other\.example|forbidden\.example|ra-agent|kv\//);
    const as = await s.call({ method: 'GET', url: '/.well-known/oauth-authorization-server', token: null });
    expect(as.body).not.toMatch(/mcp\.example|protected_resources/);
  });
});
