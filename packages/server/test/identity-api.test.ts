import { request as httpsRequest } from 'node:https';
import { CertificateAuthority, createDpopProof, generateDpopKeyPair } from '@custos/core';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../test-support/postgres.js';
import { buildApp } from '../src/app.js';
import { auditEvents, type Backend, fakeSecret, startTestServer, type TestServer } from './test-server.js';

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];
const ISSUER = 'https://token.actions.example.test';

describe.each(backends)('secure introduction: JWT federation, mTLS and DPoP on %s', (backend) => {
  let s: TestServer;
  let signingKey: CryptoKey;
  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.call({
      method: 'PUT',
      url: '/v1/policies/builds',
      payload: {
        policy: 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/builds/");',
      },
    });
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/builds/deploy', payload: { data: { k: fakeSecret() } } });
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    signingKey = privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(publicKey)), kid: 'ci-key-1', alg: 'RS256', use: 'sig' };
    const method = await s.call({
      method: 'PUT',
      url: '/v1/auth/jwt/methods/github',
      payload: { issuer: ISSUER, audience: 'custos', jwks: { keys: [jwk] } },
    });
    expect(method.statusCode).toBe(200);
    for (const [name, body] of [
      [
        'ci-agent',
        {
          policies: ['builds'],
          auth: ['jwt'],
          bound_claims: { repository: 'acme/*' },
          jwt_methods: ['github'],
          max_ttl: '10m',
        },
      ],
      ['gpu-node', { policies: ['builds'], auth: ['cert'], max_ttl: '10m' }],
      ['bound-agent', { policies: ['builds'], auth: ['bootstrap'], require_dpop: true, max_ttl: '10m' }],
    ] as const) {
      expect((await s.call({ method: 'PUT', url: `/v1/roles/${name}`, payload: body })).statusCode).toBe(200);
    }
  });
  afterAll(async () => {
    await s?.close();
  });

  const workloadJwt = (claims: Record<string, unknown>, options: { aud?: string; exp?: string; iss?: string } = {}) =>
    new SignJWT({ repository: 'acme/payments', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'ci-key-1' })
      .setIssuer(options.iss ?? ISSUER)
      .setAudience(options.aud ?? 'custos')
      .setSubject('repo:acme/payments:ref:refs/heads/main')
      .setIssuedAt()
      .setExpirationTime(options.exp ?? '5m')
      .sign(signingKey);
  const jwtLogin = async (jwt: string) =>
    s.call({ method: 'POST', url: '/v1/auth/jwt/login', token: null, payload: { role: 'ci-agent', jwt } });

  it('a workload JWT with matching issuer, audience and bound claims logs in', async () => {
    const login = await jwtLogin(await workloadJwt({}));
    expect(login.statusCode).toBe(200);
    const token = login.json().token;
    expect(login.json().task.sub).toBe(`jwt:${ISSUER}#repo:acme/payments:ref:refs/heads/main`);
    const read = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/builds/deploy', token });
    expect(read.statusCode).toBe(200);
  });

  it('refuses wrong audience, wrong issuer, expiry, unbound claims and alg none — with the reason only in audit', async () => {
    const refused = [
      await workloadJwt({}, { aud: 'someone-else' }),
      await workloadJwt({}, { iss: 'https://evil.example.test' }),
      await workloadJwt({ repository: 'other-org/app' }),
      await workloadJwt({}, { exp: '-1m' }),
      `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(
        JSON.stringify({ iss: ISSUER, aud: 'custos', sub: 'x', repository: 'acme/a', exp: 9e9, iat: 1 }),
      ).toString('base64url')}.`,
    ];
    for (const jwt of refused) {
      const response = await jwtLogin(jwt);
      expect(response.statusCode).toBe(401);
      expect(response.json().error).toEqual({ code: 'CUSTOS_ERR_UNAUTHENTICATED', message: expect.any(String) });
    }
    const events = await auditEvents(s.storage);
    const reasons = events
      .filter((e) => (e.request as { route?: string })?.route === '/v1/auth/jwt/login' && e.status === 401)
      .map((e) => e.reason);
    expect(reasons.filter(Boolean).length).toBeGreaterThanOrEqual(4);
  });

  it('mTLS: a certificate from custos’s CA logs in without a bearer secret; foreign, absent and revoked ones do not', async () => {
    const services = s.node.services();
    const server = await services.certs.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
    const tls: FastifyInstance = await buildApp({
      node: s.node,
      logger: false,
      https: { key: server.keyPem, cert: server.certPem },
    });
    await tls.listen({ host: '127.0.0.1', port: 0 });
    const port = (tls.server.address() as { port: number }).port;
    const login = (client?: { cert: string; key: string }) =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: '127.0.0.1',
            port,
            path: '/v1/auth/cert/login',
            method: 'POST',
            ca: services.certs.caPem,
            headers: { 'content-type': 'application/json' },
            ...(client ?? {}),
          },
          (res) => {
            let text = '';
            res.on('data', (c) => {
              text += c;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
    try {
      const issued = (await s.call({ method: 'POST', url: '/v1/roles/gpu-node/certs', payload: { ttl: '1h' } })).json();
      expect(issued.spiffe_id).toMatch(/^spiffe:\/\/custos\.local\/role\/gpu-node\//);
      const ok = await login({ cert: issued.cert_pem, key: issued.key_pem });
      expect(ok.status).toBe(200);
      expect((ok.body.task as { sub: string }).sub).toBe(issued.spiffe_id);

      expect((await login()).status).toBe(401);
      const foreignCa = await CertificateAuthority.create({ trustDomain: 'custos.local' });
      const foreign = await foreignCa.issueClientCertificate({ role: 'gpu-node', id: 'intruder', ttlMs: 3_600_000 });
      expect((await login({ cert: foreign.certPem, key: foreign.keyPem! })).status).toBe(401);

      await s.call({ method: 'POST', url: '/v1/auth/cert/revoke', payload: { serial: issued.serial } });
      expect((await login({ cert: issued.cert_pem, key: issued.key_pem })).status).toBe(401);
    } finally {
      await tls.close();
    }
  });

  it('DPoP: a sender-constrained task token is useless without a fresh proof from the agent’s key', async () => {
    const keys = await generateDpopKeyPair('ES256');
    const bootstrap = (await s.call({ method: 'POST', url: '/v1/roles/bound-agent/bootstrap', payload: {} })).json()
      .token;
    const unbound = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: bootstrap },
    });
    expect(unbound.json().error.code).toBe('CUSTOS_ERR_DPOP_REQUIRED');
    const bootstrap2 = (await s.call({ method: 'POST', url: '/v1/roles/bound-agent/bootstrap', payload: {} })).json()
      .token;
    const login = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: bootstrap2, dpop_jkt: keys.jkt },
    });
    expect(login.json()).toMatchObject({ token_type: 'DPoP' });
    const token = login.json().token as string;
    const url = `${s.node.services().issuer}/v1/secrets/data/kv/builds/deploy`;
    const proof = await createDpopProof({ ...keys, method: 'GET', url, accessToken: token });
    const read = (headers: Record<string, string>) =>
      s.call({ method: 'GET', url: '/v1/secrets/data/kv/builds/deploy', token: null, headers });
    expect((await read({ authorization: `DPoP ${token}`, dpop: proof })).statusCode).toBe(200);
    // pasted into a transcript, the token alone is useless
    expect((await read({ authorization: `Bearer ${token}` })).statusCode).toBe(401);
    // and a captured proof cannot be replayed
    expect((await read({ authorization: `DPoP ${token}`, dpop: proof })).statusCode).toBe(401);
    const other = await generateDpopKeyPair('ES256');
    const wrongKey = await createDpopProof({ ...other, method: 'GET', url, accessToken: token });
    expect((await read({ authorization: `DPoP ${token}`, dpop: wrongKey })).statusCode).toBe(401);
  });
});
