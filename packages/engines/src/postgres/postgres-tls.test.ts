import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { CertificateAuthority, CustosError, EgressPolicy } from '@custos/core';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../../test-support/postgres.js';
import {
  type PostgresTlsRelay,
  startPostgresTlsRelay,
  throughRelay,
} from '../../../../test-support/postgres-tls-relay.js';
import { defaultRole, withUser } from '../test-support/engine-test-helpers.js';
import { PostgresEngine } from './postgres-engine.js';

/**
 * A stand-in for a PostgreSQL server with TLS (the test cluster has none):
 * it answers the SSLRequest with `S`, completes a TLS handshake with its
 * certificate, and counts the startup messages that reach it *over TLS* —
 * which the client sends only once it accepted the certificate. Then it
 * hangs up, so the engine reports the database unavailable either way.
 */
async function tlsFrontDoor(
  key: string,
  cert: string,
): Promise<{ server: Server; port: number; accepted: () => number }> {
  let accepted = 0;
  const server = createServer((socket: Socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (request) => {
      // SSLRequest: length 8, code 80877103.
      if (request.length !== 8 || request.readInt32BE(4) !== 80_877_103) return socket.destroy();
      socket.write('S');
      const secure = new TLSSocket(socket, { isServer: true, key, cert });
      secure.on('error', () => undefined);
      secure.once('data', () => {
        accepted++;
        secure.destroy();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, port, accepted: () => accepted };
}

describe.skipIf(!hasPostgres())('PostgresEngine TLS end to end (inline CA, real PostgreSQL behind a TLS relay)', () => {
  let db: TestDatabase;
  let relay: PostgresTlsRelay;
  let engine: PostgresEngine;
  let ca: CertificateAuthority;

  beforeAll(async () => {
    db = await createTestDatabase();
    ca = await CertificateAuthority.create({ trustDomain: 'engine-tls-e2e.test' });
    const leaf = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    relay = await startPostgresTlsRelay(leaf.keyPem, leaf.certPem, new URL(db.url));
  });
  afterAll(async () => {
    await engine?.close();
    await relay?.close();
    await db?.drop();
  });

  it('verifies, mints a working login and revokes it, all over verify-full TLS with the engine’s CA', async () => {
    engine = new PostgresEngine({
      url: throughRelay(db.url, relay, 'sslmode=verify-full&connect_timeout=5'),
      egress: new EgressPolicy({ allow: ['127.0.0.1'] }),
      tlsCa: ca.certPem,
    });
    await engine.verifyConnection();
    expect(relay.sessions()).toBeGreaterThan(0);
    const role = defaultRole();
    const cred = await engine.createCredential(role, {
      expiresAt: new Date(Date.now() + 10 * 60_000),
      usernamePrefix: 'pgtls',
    });
    // The minted user logs in (directly, without the relay) and sees its database.
    const user = new pg.Client({ connectionString: withUser(db.url, cred.username, cred.password) });
    await user.connect();
    expect((await user.query('SELECT current_user AS u')).rows[0].u).toBe(cred.username);
    await user.end();
    await engine.revokeCredential(role, cred.username);
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const left = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [cred.username]);
    await admin.end();
    expect(left.rowCount).toBe(0);
  });
});

describe('PostgresEngine TLS: sslmode and the engine’s own CA', () => {
  let ca: CertificateAuthority;
  let byAddress: Awaited<ReturnType<typeof tlsFrontDoor>>;
  let byNameOnly: Awaited<ReturnType<typeof tlsFrontDoor>>;
  const engines: PostgresEngine[] = [];
  const egress = new EgressPolicy({ allow: ['127.0.0.1'] });

  beforeAll(async () => {
    ca = await CertificateAuthority.create({ trustDomain: 'engine-tls.test' });
    const forAddress = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    byAddress = await tlsFrontDoor(forAddress.keyPem, forAddress.certPem);
    // A certificate that does not name the address the engine connects to.
    const forName = await ca.issueServerCertificate({ dnsNames: ['db.example'], ipAddresses: [] });
    byNameOnly = await tlsFrontDoor(forName.keyPem, forName.certPem);
  });
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((e) => e.close().catch(() => undefined)));
  });
  afterAll(async () => {
    for (const f of [byAddress, byNameOnly]) await new Promise((r) => f?.server.close(r));
  });

  const attempt = async (port: number, query: string, tlsCa?: string): Promise<void> => {
    const engine = new PostgresEngine({
      url: `postgres://custos:fake-pw@127.0.0.1:${port}/app?${query}`,
      egress,
      ...(tlsCa ? { tlsCa } : {}),
    });
    engines.push(engine);
    const outcome = await engine.verifyConnection().then(
      () => undefined,
      (e: unknown) => e,
    );
    // The stand-in never finishes a login: unavailable either way, never an unscrubbed driver error.
    expect(outcome).toBeInstanceOf(CustosError);
    expect((outcome as CustosError).code).toBe('CUSTOS_ERR_ENGINE_UNAVAILABLE');
  };

  it('with the engine’s CA (inline PEM), verify-full accepts the server’s certificate', async () => {
    const before = byAddress.accepted();
    await attempt(byAddress.port, 'sslmode=verify-full&connect_timeout=2', ca.certPem);
    expect(byAddress.accepted()).toBe(before + 1);
  });

  it('a CA alone implies TLS verified against it', async () => {
    const before = byAddress.accepted();
    await attempt(byAddress.port, 'connect_timeout=2', ca.certPem);
    expect(byAddress.accepted()).toBe(before + 1);
  });

  it('without the CA, require verifies against the system CAs and refuses the certificate', async () => {
    const before = byAddress.accepted();
    await attempt(byAddress.port, 'sslmode=require&connect_timeout=2');
    expect(byAddress.accepted()).toBe(before);
  });

  it('verify-full refuses a certificate that does not name the server; verify-ca accepts it', async () => {
    const before = byNameOnly.accepted();
    await attempt(byNameOnly.port, 'sslmode=verify-full&connect_timeout=2', ca.certPem);
    expect(byNameOnly.accepted()).toBe(before);
    await attempt(byNameOnly.port, 'sslmode=verify-ca&connect_timeout=2', ca.certPem);
    expect(byNameOnly.accepted()).toBe(before + 1);
  });
});
