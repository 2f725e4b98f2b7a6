import { createDpopProof, generateDpopKeyPair } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../../test-support/postgres.js';
import { type Backend, fakeSecret, startTestServer, type TestServer } from '../test-server.js';
import {
  concreteUrl,
  PUBLIC_ROUTES,
  routeKey,
  sweptRoutes,
  type WriteLog,
  watchWrites,
} from './adversarial-support.js';

// Attack class: state changes (and disclosures) by a caller without a token.
//
// Every route the application registers is swept — the list comes from the
// app itself, so a route added later is swept without anyone listing it. A
// route that is not public must answer 401 to an anonymous caller and change
// nothing in storage. Public routes must be named below with a check of their
// own: adding one without thinking about what an anonymous caller can do with
// it fails the suite.

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];
const ISSUER = 'http://127.0.0.1:8420';
/** A plausible-looking task token nobody signed. */
const forgedJwt = () =>
  `${Buffer.from('{"alg":"EdDSA","typ":"JWT"}').toString('base64url')}.${Buffer.from(
    JSON.stringify({ sub: 'x', task_id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA', exp: 4_000_000_000 }),
  ).toString('base64url')}.${Buffer.alloc(64, 7).toString('base64url')}`;

/**
 * How a route refuses a caller without a valid token: 401, the OAuth
 * introspection endpoint included (RFC 7662 §2.1 with RFC 6750 §3).
 */
const REFUSED = 401;

describe.each(backends)('without a token, nothing that matters changes (%s)', (backend) => {
  let s: TestServer;
  let log: WriteLog;
  const anonymous = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    s.call({
      method: method as 'GET',
      url,
      token: null,
      headers,
      ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
    });
  /** Expects the root token still to work: the node was not sealed, nothing was revoked. */
  const stillServing = async () => {
    expect(s.node.sealed).toBe(false);
    const read = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/adv/present' });
    expect(read.statusCode).toBe(200);
  };

  beforeAll(async () => {
    const watch = watchWrites();
    log = watch.log;
    s = await startTestServer(backend, { wrapStorage: watch.wrap });
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/adv/present', payload: { data: { k: fakeSecret() } } });
    await s.call({
      method: 'PUT',
      url: '/v1/policies/adv',
      payload: { policy: 'permit(principal, action, resource in Custos::Path::"kv/adv/");' },
    });
    await s.call({ method: 'PUT', url: '/v1/roles/adv-probe', payload: { policies: ['adv'], auth: ['bootstrap'] } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('the public routes are exactly the ones this file checks one by one', () => {
    const publicRoutes = sweptRoutes(s.app.routeTable)
      .filter((r) => r.access?.kind === 'public')
      .map(routeKey)
      .sort();
    expect(publicRoutes).toEqual(PUBLIC_ROUTES);
  });

  it('every route that is not public answers 401 to a caller without a token, and writes nothing', async () => {
    const routes = sweptRoutes(s.app.routeTable).filter((r) => r.access?.kind !== 'public');
    expect(routes.length).toBeGreaterThan(50);
    for (const route of routes) {
      const url = concreteUrl(route.url);
      const writes = await log.during(async () => {
        const response = await anonymous(
          route.method,
          url,
          ['GET', 'HEAD', 'DELETE'].includes(route.method) ? undefined : {},
        );
        expect(response.statusCode, routeKey(route)).toBe(REFUSED);
        if (route.method !== 'HEAD') expect(response.body, routeKey(route)).toMatch(/CUSTOS_ERR_UNAUTHENTICATED/);
      });
      expect(writes, routeKey(route)).toEqual([]);
    }
    await stillServing();
  });

  it('a malformed, unknown or forged token is refused on every such route the same way, and writes nothing', async () => {
    const routes = sweptRoutes(s.app.routeTable).filter((r) => r.access?.kind !== 'public');
    const unknownOperatorToken = `cus_${Buffer.alloc(32, 1).toString('base64url')}`;
    for (const route of routes) {
      for (const credential of ['garbage', unknownOperatorToken, forgedJwt()]) {
        const writes = await log.during(async () => {
          const response = await anonymous(route.method, concreteUrl(route.url), undefined, {
            authorization: `Bearer ${credential}`,
          });
          expect(response.statusCode, `${routeKey(route)} ${credential.slice(0, 8)}`).toBe(REFUSED);
        });
        expect(writes, routeKey(route)).toEqual([]);
      }
    }
  });

  it('a DPoP proof signed with any key, without a valid token, makes custos write nothing', async () => {
    // A proof's jti is recorded in storage to make it single-use. Recording it
    // before the token is known to be valid let anyone with a key pair (i.e.
    // anyone) make every node write a row per request.
    const keys = await generateDpopKeyPair();
    const token = forgedJwt();
    const routes = sweptRoutes(s.app.routeTable).filter((r) => r.access?.kind !== 'public' && r.method !== 'HEAD');
    for (const route of routes) {
      const url = concreteUrl(route.url);
      const proof = await createDpopProof({
        ...keys,
        method: route.method,
        url: `${ISSUER}${url}`,
        accessToken: token,
      });
      const writes = await log.during(async () => {
        const response = await anonymous(route.method, url, undefined, { authorization: `DPoP ${token}`, dpop: proof });
        expect(response.statusCode, routeKey(route)).toBe(REFUSED);
      });
      expect(writes, routeKey(route)).toEqual([]);
    }
    const proof = await createDpopProof({
      ...keys,
      method: 'POST',
      url: `${ISSUER}/v1/oauth/token`,
      accessToken: token,
    });
    const writes = await log.during(async () => {
      const response = await anonymous(
        'POST',
        '/v1/oauth/token',
        {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: token,
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        },
        { dpop: proof },
      );
      expect(response.statusCode).toBeGreaterThanOrEqual(400);
      expect(response.statusCode).toBeLessThan(500);
    });
    expect(writes).toEqual([]);
  });

  it('health and seal status reveal only the seal state and write nothing', async () => {
    const writes = await log.during(async () => {
      const health = await anonymous('GET', '/v1/sys/health');
      expect(health.statusCode).toBe(200);
      expect(Object.keys(health.json()).sort()).toEqual(['degraded', 'initialized', 'problems', 'sealed', 'version']);
      const status = await anonymous('GET', '/v1/sys/seal-status');
      expect(status.statusCode).toBe(200);
      for (const key of Object.keys(status.json())) {
        expect(['initialized', 'sealed', 'type', 'threshold', 'shares', 'progress', 'term']).toContain(key);
      }
    });
    expect(writes).toEqual([]);
  });

  it('an unauthenticated caller cannot seal an unsealed node (an unseal reset is refused once unsealed)', async () => {
    const writes = await log.during(async () => {
      const reset = await anonymous('POST', '/v1/sys/unseal', { reset: true });
      expect(reset.statusCode).toBe(409);
      expect(reset.json().error.code).toBe('CUSTOS_ERR_NOT_SEALED');
    });
    expect(writes).toEqual([]);
    await stillServing();
  });

  it('an unseal share sent to an unsealed node changes nothing', async () => {
    const share = await anonymous('POST', '/v1/sys/unseal', { key: Buffer.alloc(33, 3).toString('base64') });
    expect(share.statusCode).toBeLessThan(500);
    const both = await anonymous('POST', '/v1/sys/unseal', { key: 'AAAA', reset: true });
    expect(both.statusCode).toBe(400);
    await stillServing();
  });

  it('init on an initialised node is refused, whatever the seal, and changes nothing', async () => {
    const writes = await log.during(async () => {
      const init = await anonymous('POST', '/v1/sys/init', { shares: 3, threshold: 2 });
      expect(init.statusCode).toBe(409);
      expect(init.json().error.code).toBe('CUSTOS_ERR_ALREADY_INITIALIZED');
      expect(init.body).not.toMatch(/root_token|shares"/);
    });
    expect(writes).toEqual([]);
    await stillServing();
  });

  it('a login without a valid credential (bootstrap, JWT, certificate) starts nothing and writes nothing', async () => {
    const writes = await log.during(async () => {
      const bootstrap = await anonymous('POST', '/v1/auth/bootstrap/login', {
        token: `cbt_${Buffer.alloc(32, 9).toString('base64url')}`,
      });
      expect(bootstrap.statusCode).toBe(401);
      const jwt = await anonymous('POST', '/v1/auth/jwt/login', { role: 'adv-probe', jwt: forgedJwt() });
      expect(jwt.statusCode).toBe(401);
      const cert = await anonymous('POST', '/v1/auth/cert/login', {});
      expect(cert.statusCode).toBe(401);
    });
    expect(writes).toEqual([]);
  });

  it('the token exchange without a valid subject token mints nothing and writes nothing', async () => {
    const writes = await log.during(async () => {
      const exchange = await anonymous('POST', '/v1/oauth/token', {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: forgedJwt(),
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      });
      expect(exchange.statusCode).toBeGreaterThanOrEqual(400);
      expect(exchange.statusCode).toBeLessThan(500);
      expect(exchange.body).not.toMatch(/access_token/);
    });
    expect(writes).toEqual([]);
  });

  it('discovery documents (OpenAPI, JWKS, metadata, CA, audit keys) carry public material only and write nothing', async () => {
    const writes = await log.during(async () => {
      const openapi = await anonymous('GET', '/openapi.json');
      expect(openapi.statusCode).toBe(200);
      expect(openapi.json().openapi).toMatch(/^3\./);
      const jwks = await anonymous('GET', '/.well-known/jwks.json');
      expect(jwks.statusCode).toBe(200);
      for (const key of jwks.json().keys as Array<Record<string, unknown>>) expect(key).not.toHaveProperty('d');
      const metadata = await anonymous('GET', '/.well-known/oauth-authorization-server');
      expect(metadata.json().issuer).toBe(ISSUER);
      const ca = await anonymous('GET', '/v1/auth/cert/ca');
      expect(ca.json().ca_pem).toMatch(/BEGIN CERTIFICATE/);
      expect(ca.body).not.toMatch(/PRIVATE KEY/);
      const auditKeys = await anonymous('GET', '/v1/audit/public-keys');
      expect(auditKeys.body).toMatch(/PUBLIC KEY/);
      expect(auditKeys.body).not.toMatch(/PRIVATE KEY/);
    });
    expect(writes).toEqual([]);
  });
});

describe('the Shamir seal lifecycle, without a token', () => {
  let s: TestServer;
  let shares: string[];
  const anonymous = (url: string, payload: Record<string, unknown>) =>
    s.call({ method: 'POST', url, token: null, payload });
  const unsealWith = async (keys: string[]) => {
    for (const key of keys) expect((await anonymous('/v1/sys/unseal', { key })).statusCode).toBe(200);
  };

  beforeAll(async () => {
    s = await startTestServer('sqlite', { seal: 'shamir' });
    const init = await anonymous('/v1/sys/init', { shares: 3, threshold: 2 });
    expect(init.statusCode).toBe(200);
    shares = init.json().shares;
    await unsealWith(shares.slice(0, 2));
    expect(s.node.sealed).toBe(false);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('an unauthenticated unseal reset cannot seal an unsealed Shamir node', async () => {
    const reset = await anonymous('/v1/sys/unseal', { reset: true });
    expect(reset.json().error.code).toBe('CUSTOS_ERR_NOT_SEALED');
    expect(s.node.sealed).toBe(false);
    expect((await s.call({ method: 'GET', url: '/v1/sys/seal-status', token: null })).json().sealed).toBe(false);
  });

  it('init on an initialised Shamir node is refused and hands out no new shares or root token', async () => {
    const again = await anonymous('/v1/sys/init', { shares: 3, threshold: 2 });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('CUSTOS_ERR_ALREADY_INITIALIZED');
    expect(s.node.sealed).toBe(false);
  });

  it('while sealed, a reset clears unseal progress and nothing else', async () => {
    expect((await s.call({ method: 'POST', url: '/v1/sys/seal' })).statusCode).toBe(204);
    await anonymous('/v1/sys/unseal', { key: shares[0] as string });
    const before = await s.call({ method: 'GET', url: '/v1/sys/seal-status', token: null });
    expect(before.json().progress).toBe(1);
    const reset = await anonymous('/v1/sys/unseal', { reset: true });
    expect(reset.statusCode).toBe(200);
    expect(reset.json()).toMatchObject({ sealed: true, progress: 0 });
    // The shares still unseal it: a reset forgets progress, never keys.
    await unsealWith(shares.slice(1, 3));
    expect(s.node.sealed).toBe(false);
  });

  it('a sealed node answers only health, seal status, init and unseal; everything else is 503 and writes nothing', async () => {
    const watch = watchWrites();
    const sealed = await startTestServer('sqlite', { seal: 'shamir', wrapStorage: watch.wrap });
    try {
      const routes = sweptRoutes(sealed.app.routeTable);
      expect(
        routes
          .filter((r) => r.whileSealed)
          .map(routeKey)
          .sort(),
      ).toEqual(['GET /v1/sys/health', 'GET /v1/sys/seal-status', 'POST /v1/sys/init', 'POST /v1/sys/unseal']);
      for (const route of routes.filter((r) => !r.whileSealed)) {
        const writes = await watch.log.during(async () => {
          const response = await sealed.call({
            method: route.method as 'GET',
            url: concreteUrl(route.url),
            token: null,
          });
          expect(response.statusCode, routeKey(route)).toBe(503);
        });
        expect(writes, routeKey(route)).toEqual([]);
      }
    } finally {
      await sealed.close();
    }
  });
});
