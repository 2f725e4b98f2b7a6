import { DEFAULT_DPOP_ALGORITHMS } from '@custos/core';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeSecret, startTestServer, type TestServer } from './test-server.js';

const DPOP_CHALLENGE = `DPoP realm="custos", algs="${DEFAULT_DPOP_ALGORITHMS.join(' ')}"`;

/** plugins/response-headers-plugin.ts: what protects every response, whatever route sent it. */
describe('response headers', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('sqlite');
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/headers/x', payload: { data: { k: fakeSecret() } } });
    await s.call({ method: 'PUT', url: '/v1/roles/headers', payload: { policies: [], max_ttl: '10m' } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('no response that can carry a token or a secret may be stored by any cache', async () => {
    const bootstrap = (
      await s.call({ method: 'POST', url: '/v1/roles/headers/bootstrap', payload: { ttl: '1m' } })
    ).json().token as string;
    const requests: Array<InjectOptions & { token?: string | null; status: number }> = [
      { method: 'GET', url: '/v1/secrets/data/kv/headers/x', status: 200 },
      { method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['default'], ttl: '1m' }, status: 200 },
      { method: 'POST', url: '/v1/roles/headers/tasks', payload: { ttl: '1m' }, status: 200 },
      { method: 'POST', url: '/v1/auth/bootstrap/login', token: null, payload: { token: bootstrap }, status: 200 },
      { method: 'GET', url: '/v1/audit/public-keys', token: null, status: 200 },
      // errors too: they name paths and codes, and a cached 401 would outlive a fixed token
      { method: 'GET', url: '/v1/secrets/data/kv/headers/x', token: null, status: 401 },
      { method: 'GET', url: '/v1/secrets/data/kv/headers/none', status: 404 },
      { method: 'GET', url: '/v1/no-such-route', status: 404 },
      { method: 'PUT', url: '/v1/secrets/data/kv/headers/x', payload: { nope: 1 }, status: 400 },
    ];
    for (const { status, ...request } of requests) {
      const response = await s.call(request);
      expect(response.statusCode, `${request.method} ${request.url}`).toBe(status);
      expect(response.headers['cache-control'], `${request.method} ${request.url}`).toBe('no-store');
      expect(response.headers.pragma, `${request.method} ${request.url}`).toBe('no-cache');
    }
  });

  it('public documents may be cached briefly, and only when they succeed', async () => {
    for (const url of ['/.well-known/jwks.json', '/.well-known/oauth-authorization-server', '/openapi.json']) {
      const response = await s.call({ method: 'GET', url, token: null });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers['cache-control'], url).toBe('public, max-age=60');
      expect(response.headers.pragma, url).toBeUndefined();
    }
    // A sealed node answers the JWKS route with an error: that is not cached.
    const sealedServer = await startTestServer('sqlite');
    try {
      await sealedServer.node.seal();
      const sealed = await sealedServer.call({ method: 'GET', url: '/.well-known/jwks.json', token: null });
      expect(sealed.statusCode).toBe(503);
      expect(sealed.headers['cache-control']).toBe('no-store');
    } finally {
      await sealedServer.close();
    }
  });

  it('every 401 carries Bearer and DPoP challenges; invalid_token only for a token that was presented', async () => {
    const none = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/headers/x', token: null });
    expect(none.headers['www-authenticate']).toEqual(['Bearer realm="custos"', DPOP_CHALLENGE]);

    const forged = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/headers/x', token: 'cus_forged' });
    expect(forged.headers['www-authenticate']).toEqual([
      'Bearer realm="custos", error="invalid_token"',
      DPOP_CHALLENGE,
    ]);

    const dpop = await s.call({
      method: 'GET',
      url: '/v1/secrets/data/kv/headers/x',
      token: null,
      headers: { authorization: 'DPoP not-a-token', dpop: 'not-a-proof' },
    });
    expect(dpop.headers['www-authenticate']).toEqual([
      'Bearer realm="custos"',
      DPOP_CHALLENGE.replace('realm="custos"', 'realm="custos", error="invalid_token"'),
    ]);

    // A login's 401 is about the credential in its body: no header token is called invalid.
    const login = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      payload: { token: 'cbt_not-a-bootstrap-token' },
    });
    expect(login.statusCode).toBe(401);
    expect(login.headers['www-authenticate']).toEqual(['Bearer realm="custos"', DPOP_CHALLENGE]);

    const ok = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/headers/x' });
    expect(ok.headers['www-authenticate']).toBeUndefined();
  });

  it('scheme names are case-insensitive (RFC 9110 §11.1)', async () => {
    const response = await s.call({
      method: 'GET',
      url: '/v1/secrets/data/kv/headers/x',
      token: null,
      headers: { authorization: `bearer ${s.rootToken}` },
    });
    expect(response.statusCode).toBe(200);
  });
});
