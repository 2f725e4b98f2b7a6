import { DEFAULT_DPOP_ALGORITHMS } from '@custos/core';
import type { InjectOptions } from 'fastify';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeSecret, startTestServer, type TestServer } from './test-server.js';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * The OAuth endpoints as OAuth clients see them: RFC 6749 §5.1/§5.2 responses,
 * RFC 8693 token exchange, RFC 7662 introspection, RFC 8414 metadata, and a
 * client library custos did not write (oauth4webapi) driving all of them.
 * The attack cases live in adversarial/token-forgery.test.ts.
 */
describe('OAuth endpoints', () => {
  let s: TestServer;
  const start = async () => {
    const response = await s.call({ method: 'POST', url: '/v1/roles/oauth-agent/tasks', payload: { ttl: '5m' } });
    expect(response.statusCode).toBe(200);
    return response.json() as { token: string; task_id: string };
  };
  /** A token exchange as a conforming client sends it; `null` leaves a parameter out. */
  const exchange = (params: Record<string, string | null>) =>
    s.call({
      method: 'POST',
      url: '/v1/oauth/token',
      token: null,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(
        Object.entries({ grant_type: EXCHANGE, subject_token_type: JWT_TYPE, ...params }).filter(
          (entry): entry is [string, string] => entry[1] !== null,
        ),
      ).toString(),
    });

  beforeAll(async () => {
    s = await startTestServer('sqlite');
    await s.call({
      method: 'PUT',
      url: '/v1/policies/oauth-agent',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/oauth/");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    const role = await s.call({
      method: 'PUT',
      url: '/v1/roles/oauth-agent',
      payload: { policies: ['oauth-agent'], max_ttl: '15m', max_depth: 2 },
    });
    expect(role.statusCode).toBe(200);
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/oauth/x', payload: { data: { k: fakeSecret() } } });
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('token endpoint (RFC 6749 §5, RFC 8693)', () => {
    it('answers a token with Cache-Control: no-store and Pragma: no-cache (RFC 6749 §5.1)', async () => {
      const response = await exchange({ subject_token: (await start()).token, scope: 'read:kv/oauth/*' });
      expect(response.statusCode).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.headers.pragma).toBe('no-cache');
      expect(response.json()).toMatchObject({ issued_token_type: JWT_TYPE, token_type: 'Bearer' });
    });

    it('answers every refusal of the request with 400 and an RFC 6749 error, the custos code beside it', async () => {
      const task = await start();
      const child = await exchange({ subject_token: task.token, scope: 'read:kv/oauth/x delegate:sys/tasks/*' });
      const childToken = child.json().access_token as string;
      const leaf = (await exchange({ subject_token: task.token, scope: 'read:kv/oauth/x' })).json().access_token;
      const grandchild = (
        await exchange({ subject_token: childToken, scope: 'read:kv/oauth/x delegate:sys/tasks/*' })
      ).json().access_token;
      const cases: Array<[Record<string, string | null>, string, string]> = [
        [{ subject_token: childToken, scope: 'read:kv/oauth/*' }, 'invalid_scope', 'CUSTOS_ERR_SCOPE_EXCEEDS_PARENT'],
        // RFC 8693 §2.1: subject_token_type is REQUIRED.
        [{ subject_token: task.token, subject_token_type: null }, 'invalid_request', 'CUSTOS_ERR_VALIDATION'],
        [{ subject_token: 'not-a-token' }, 'invalid_request', 'CUSTOS_ERR_UNAUTHENTICATED'],
        [{ subject_token: task.token, ttl: 'forever' }, 'invalid_request', 'CUSTOS_ERR_INVALID_TTL'],
        [{ scope: 'read:kv/oauth/*' }, 'invalid_request', 'CUSTOS_ERR_VALIDATION'],
        // RFC 8693 §2.2.2: a subject token "unacceptable based on policy" is invalid_request.
        [{ subject_token: leaf }, 'invalid_request', 'CUSTOS_ERR_PERMISSION_DENIED'],
        [{ subject_token: grandchild }, 'invalid_request', 'CUSTOS_ERR_DELEGATION_DEPTH'],
        [
          { subject_token: task.token, resource: 'https://api.example' },
          'invalid_target',
          'CUSTOS_ERR_UNSUPPORTED_PARAMETER',
        ],
        [
          { grant_type: 'client_credentials', subject_token: task.token },
          'unsupported_grant_type',
          'CUSTOS_ERR_UNSUPPORTED_PARAMETER',
        ],
      ];
      for (const [params, error, code] of cases) {
        const response = await exchange(params);
        expect(response.statusCode, code).toBe(400);
        expect(response.json(), code).toMatchObject({
          error,
          custos_code: code,
          error_description: expect.any(String),
        });
        expect(response.headers['cache-control']).toBe('no-store');
        expect(response.headers['www-authenticate']).toBeUndefined();
      }
    });

    it('accepts what it can honour: requested_token_type jwt or access_token, audience custos', async () => {
      const task = await start();
      const asJwt = await exchange({ subject_token: task.token, requested_token_type: JWT_TYPE });
      expect(asJwt.json()).toMatchObject({ issued_token_type: JWT_TYPE });
      const asAccess = await exchange({
        subject_token: task.token,
        subject_token_type: ACCESS_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
        audience: 'custos',
      });
      expect(asAccess.statusCode).toBe(200);
      expect(asAccess.json()).toMatchObject({ issued_token_type: ACCESS_TOKEN_TYPE });
    });

    it('takes JSON as well as the form encoding', async () => {
      const response = await s.call({
        method: 'POST',
        url: '/v1/oauth/token',
        token: null,
        payload: {
          grant_type: EXCHANGE,
          subject_token: (await start()).token,
          subject_token_type: JWT_TYPE,
          audience: ['custos'],
        },
      });
      expect(response.statusCode).toBe(200);
    });
  });

  describe('introspection (RFC 7662)', () => {
    it('answers an authenticated caller, with no-store', async () => {
      const task = await start();
      const response = await s.call({ method: 'POST', url: '/v1/oauth/introspect', payload: { token: task.token } });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ active: true, task_id: task.task_id, token_type: 'Bearer' });
      expect(response.headers['cache-control']).toBe('no-store');
    });

    it('answers a caller without credentials 401 with Bearer and DPoP challenges (RFC 6750 §3, RFC 9449 §7.1)', async () => {
      const response = await s.call({
        method: 'POST',
        url: '/v1/oauth/introspect',
        token: null,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ token: (await start()).token }).toString(),
      });
      expect(response.statusCode).toBe(401);
      expect(response.headers['www-authenticate']).toEqual([
        'Bearer realm="custos"',
        `DPoP realm="custos", algs="${DEFAULT_DPOP_ALGORITHMS.join(' ')}"`,
      ]);
      expect(response.json()).toMatchObject({ error: 'invalid_token', custos_code: 'CUSTOS_ERR_UNAUTHENTICATED' });
    });

    it('answers a malformed request 400 invalid_request', async () => {
      const response = await s.call({ method: 'POST', url: '/v1/oauth/introspect', payload: {} });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_request', custos_code: 'CUSTOS_ERR_VALIDATION' });
    });
  });

  describe('RFC 8414 metadata', () => {
    it('names only registered methods and what the server really does', async () => {
      const response = await s.call({ method: 'GET', url: '/.well-known/oauth-authorization-server', token: null });
      const meta = response.json();
      expect(meta).toMatchObject({
        issuer: s.node.services().issuer,
        token_endpoint_auth_methods_supported: ['none'],
        // RFC 8414 §2: access token types from the IANA registry, for a caller that presents its own token.
        introspection_endpoint_auth_methods_supported: ['Bearer', 'DPoP'],
        dpop_signing_alg_values_supported: [...DEFAULT_DPOP_ALGORITHMS],
        grant_types_supported: [EXCHANGE],
      });
      // A custos scope is ACTION:PATTERN entries: no finite list of values exists to advertise.
      expect(meta.scopes_supported).toBeUndefined();
      expect(response.headers['cache-control']).toBe('public, max-age=60');
    });
  });

  describe('with a client library custos did not write (oauth4webapi)', () => {
    /** oauth4webapi's requests, answered by the app in-process. */
    const viaApp = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : input);
      const headers = Object.fromEntries(new Headers(init?.headers).entries());
      const response = await s.app.inject({
        method: (init?.method ?? 'GET') as InjectOptions['method'],
        url: url.pathname + url.search,
        headers,
        ...(init?.body !== undefined && init.body !== null ? { payload: String(init.body) } : {}),
      });
      const out = new Headers();
      for (const [name, value] of Object.entries(response.headers)) {
        for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined) out.append(name, String(v));
      }
      return new Response(response.rawPayload.length ? response.rawPayload : null, {
        status: response.statusCode,
        headers: out,
      });
    }) as typeof fetch;
    const options = { [oauth.customFetch]: viaApp, [oauth.allowInsecureRequests]: true };
    const client: oauth.Client = { client_id: 'resource-server' };
    const bearer =
      (token: string): oauth.ClientAuth =>
      (_as, _client, _body, headers) => {
        headers.set('authorization', `Bearer ${token}`);
      };
    let as: oauth.AuthorizationServer;

    beforeAll(async () => {
      const issuer = new URL(s.node.services().issuer);
      as = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { ...options, algorithm: 'oauth2' }),
      );
    });

    it('discovers the endpoints and exchanges a task token for a child (RFC 8693)', async () => {
      const task = await start();
      const response = await oauth.genericTokenEndpointRequest(
        as,
        client,
        oauth.None(),
        EXCHANGE,
        { subject_token: task.token, subject_token_type: JWT_TYPE, scope: 'read:kv/oauth/x' },
        options,
      );
      const result = await oauth.processGenericTokenEndpointResponse(as, client, response);
      expect(result).toMatchObject({ token_type: 'bearer', scope: 'read:kv/oauth/x', issued_token_type: JWT_TYPE });
      const read = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/oauth/x', token: result.access_token });
      expect(read.statusCode).toBe(200);
    });

    it('surfaces a refusal as an OAuth error with status 400', async () => {
      const task = await start();
      const response = await oauth.genericTokenEndpointRequest(
        as,
        client,
        oauth.None(),
        EXCHANGE,
        { subject_token: task.token, subject_token_type: JWT_TYPE, audience: 'billing-api' },
        options,
      );
      const failure = await oauth.processGenericTokenEndpointResponse(as, client, response).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(oauth.ResponseBodyError);
      expect(failure).toMatchObject({ error: 'invalid_target', status: 400 });
    });

    it('introspects with the caller’s own token as the Bearer method the metadata names', async () => {
      expect(as.introspection_endpoint_auth_methods_supported).toContain('Bearer');
      const task = await start();
      const response = await oauth.introspectionRequest(as, client, bearer(s.rootToken), task.token, options);
      const result = await oauth.processIntrospectionResponse(as, client, response);
      expect(result).toMatchObject({ active: true, task_id: task.task_id, iss: as.issuer });
    });

    it('sees the challenges of an unauthenticated introspection', async () => {
      const response = await oauth.introspectionRequest(as, client, oauth.None(), (await start()).token, options);
      const failure = await oauth.processIntrospectionResponse(as, client, response).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
      const challenges = (failure as oauth.WWWAuthenticateChallengeError).cause;
      expect(challenges.map((c) => c.scheme)).toEqual(['bearer', 'dpop']);
      expect(challenges[1]?.parameters.algs).toBe(DEFAULT_DPOP_ALGORITHMS.join(' '));
    });
  });
});
