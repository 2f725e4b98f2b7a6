import { CertificateAuthority } from '@custos/core';
import { createEngine } from '@custos/engines';
import { buildApp } from '@custos/server';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, postgresUrl, type TestDatabase } from '../../../test-support/postgres.js';
import { Custos, CustosApiError, type DynamicCredentials } from '../src/index.js';
import {
  bootstrapToken,
  fakeSecret,
  type ListeningServer,
  setUpAgentRole,
  startListeningServer,
} from './sdk-test-server.js';

const ISSUER = 'https://ci.example.test';

async function roleExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  try {
    return ((await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount ?? 0) > 0;
  } finally {
    await client.end();
  }
}

describe('SDK logins: workload JWT and client certificate', () => {
  let s: ListeningServer;
  let signingKey: CryptoKey;
  const secret = fakeSecret('team');

  beforeAll(async () => {
    s = await startListeningServer();
    await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/team/db', payload: { data: { password: secret } } });
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    signingKey = privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(publicKey)), kid: 'ci-1', alg: 'ES256', use: 'sig' };
    const method = await s.call({
      method: 'PUT',
      url: '/v1/auth/jwt/methods/ci',
      payload: { issuer: ISSUER, audience: 'custos', jwks: { keys: [jwk] } },
    });
    expect(method.statusCode, method.body).toBe(200);
    await setUpAgentRole(s, 'ci-agent', { auth: ['jwt'], jwt_methods: ['ci'], bound_claims: { sub: 'repo:acme/*' } });
    await setUpAgentRole(s, 'gpu-node', { auth: ['cert'] });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('withTask logs in with a workload JWT, and a forged one is refused with the server’s code', async () => {
    const custos = new Custos({ address: s.address });
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'ci-1' })
      .setIssuer(ISSUER)
      .setAudience('custos')
      .setSubject('repo:acme/app')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(signingKey);
    const read = await custos.withTask({ jwt, role: 'ci-agent', ttl: '2m' }, async (task) => {
      const shown = await task.show();
      expect(shown.state).toBe('active');
      return task.readSecret('kv/team/db');
    });
    expect(read.data.password).toBe(secret);
    const forged = `${jwt.slice(0, jwt.lastIndexOf('.'))}.${Buffer.alloc(64).toString('base64url')}`;
    const refused = await custos.loginWithJwt({ jwt: forged, role: 'ci-agent' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CustosApiError);
    expect(refused).toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED', status: 401 });
    expect((refused as Error).message).not.toContain(forged);
  });

  it('logs in with a client certificate over the mTLS listener; a foreign certificate is refused', async () => {
    const services = s.node.services();
    const server = await services.certs.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
    const tls: FastifyInstance = await buildApp({
      node: s.node,
      logger: false,
      https: { key: server.keyPem, cert: server.certPem },
    });
    await tls.listen({ host: '127.0.0.1', port: 0 });
    const tlsAddress = `https://127.0.0.1:${(tls.server.address() as { port: number }).port}`;
    try {
      const issued = (await s.call({ method: 'POST', url: '/v1/roles/gpu-node/certs', payload: { ttl: '1h' } })).json();
      // The plain HTTP client serves everything else; only the login goes to the mTLS listener.
      const custos = new Custos({ address: s.address });
      const cert = { cert: issued.cert_pem, key: issued.key_pem, ca: services.certs.caPem, address: tlsAddress };
      const read = await custos.withTask({ cert, ttl: '1m' }, (task) => task.readSecret('kv/team/db'));
      expect(read.data.password).toBe(secret);

      const foreignCa = await CertificateAuthority.create({ trustDomain: 'custos.local' });
      const foreign = await foreignCa.issueClientCertificate({ role: 'gpu-node', id: 'intruder', ttlMs: 3_600_000 });
      const refused = await custos
        .loginWithCertificate({
          cert: foreign.certPem,
          key: foreign.keyPem!,
          ca: services.certs.caPem,
          address: tlsAddress,
        })
        .catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED', status: 401 });
    } finally {
      await tls.close();
    }
  });
});

describe.skipIf(!hasPostgres())('SDK dynamic credentials: renewed while the task lives, dropped when it ends', () => {
  let s: ListeningServer;
  let target: TestDatabase;

  beforeAll(async () => {
    target = await createTestDatabase();
    s = await startListeningServer({ engineFactory: createEngine });
    await setUpAgentRole(s);
    expect(
      (await s.call({ method: 'PUT', url: '/v1/engines/pg-main', payload: { type: 'postgres', url: target.url } }))
        .statusCode,
    ).toBe(200);
    // A short lease, so renewal happens within the test; the max leaves room to renew.
    expect(
      (
        await s.call({
          method: 'PUT',
          url: '/v1/engines/pg-main/roles/reader',
          payload: { default_ttl: '3s', max_ttl: '1h' },
        })
      ).statusCode,
    ).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
    await target?.drop();
  });

  it('renews the lease before it expires, and the database user is gone once withTask returns', async () => {
    const custos = new Custos({ address: s.address });
    let credentials: DynamicCredentials | undefined;
    const renewalErrors: unknown[] = [];
    await custos.withTask({ bootstrap: await bootstrapToken(s), ttl: '5m' }, async (task) => {
      credentials = await task.creds('pg-main/reader', { onRenewalError: (e) => renewalErrors.push(e) });
      const first = credentials.expireTime.getTime();
      expect(await roleExists(credentials.username)).toBe(true);
      expect(JSON.stringify(credentials)).not.toContain(credentials.password);
      // Wait for the SDK's own renewal (scheduled at two thirds of the 3 s lease).
      await until(() => credentials!.expireTime.getTime() > first);
      const lease = (await s.call({ method: 'GET', url: `/v1/leases/${credentials.leaseId}` })).json();
      expect(Date.parse(lease.expire_time)).toBe(credentials.expireTime.getTime());
      expect(credentials.renewing).toBe(true);
    });
    expect(renewalErrors).toEqual([]);
    expect(credentials!.renewing).toBe(false);
    expect(await roleExists(credentials!.username)).toBe(false);
    const lease = (await s.call({ method: 'GET', url: `/v1/leases/${credentials!.leaseId}` })).json();
    expect(lease.state).toBe('revoked');
  });

  it('revoke() drops the user at once; renewing it then is refused with the server’s code', async () => {
    const custos = new Custos({ address: s.address });
    await custos.withTask({ bootstrap: await bootstrapToken(s) }, async (task) => {
      const dropped = await task.creds('pg-main/reader', { renew: false });
      expect(dropped.renewing).toBe(false);
      await dropped.revoke();
      expect(await roleExists(dropped.username)).toBe(false);
      const renewal = await dropped.renew().catch((e: unknown) => e);
      expect(renewal).toMatchObject({ code: 'CUSTOS_ERR_LEASE_NOT_FOUND', status: 404 });
      expect((renewal as Error).message).not.toContain(dropped.password);
    });
  });
});

/** Polls `condition` until it holds (bounded by the test timeout). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 100));
}
