import { generateKeyPairSync } from 'node:crypto';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from './certificate-authority.js';
import { IdentityRejectedError } from './identity-rejected-error.js';

// Real TLS handshakes on 127.0.0.1: the server trusts only our root
// (`requestCert`, `rejectUnauthorized`), the client trusts only our root for
// the server's IP SAN, and the handler runs the SPIFFE/revocation checks on
// the peer certificate exactly as the integrator's auth plugin would.

const TD = 'custos.test';
const HOUR = 3_600_000;
let ca: CertificateAuthority;
let server: Server;
let port: number;
const revoked = new Set<string>();
let handled = 0;

interface Reply {
  status: number;
  body: string;
}

function call(client: { cert?: string; key?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3' }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/whoami',
        ca: [ca.certPem],
        ...(client.cert ? { cert: client.cert, key: client.key } : {}),
        ...(client.maxVersion ? { maxVersion: client.maxVersion } : {}),
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  ca = await CertificateAuthority.create({ trustDomain: TD });
  const tls = await ca.issueServerCertificate();
  server = createServer(
    { key: tls.keyPem, cert: tls.certPem, ca: [ca.certPem], requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      handled++;
      const peer = (req.socket as TLSSocket).getPeerX509Certificate();
      if (!peer) {
        res.writeHead(401).end();
        return;
      }
      ca.verifyClientCertificate(peer, { isRevoked: (s) => revoked.has(s) }).then(
        (who) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(who)),
        (e: unknown) => res.writeHead(401).end(e instanceof IdentityRejectedError ? e.auditReason : 'error'),
      );
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('mTLS with certificates from the custos CA', () => {
  it.each(['TLSv1.3', 'TLSv1.2'] as const)(
    'accepts a CA-issued P-256 client certificate over %s',
    async (maxVersion) => {
      const issued = await ca.issueClientCertificate({ role: 'enricher', id: 'task-7f3a', ttlMs: HOUR });
      const reply = await call({ cert: issued.certPem, key: issued.keyPem as string, maxVersion });
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body)).toMatchObject({
        spiffeId: `spiffe://${TD}/role/enricher/task-7f3a`,
        serial: issued.serial,
      });
    },
  );

  it.each(['TLSv1.3', 'TLSv1.2'] as const)(
    'accepts a workload-generated Ed25519 key certified by the CA over %s',
    async (maxVersion) => {
      const pair = generateKeyPairSync('ed25519');
      const issued = await ca.issueClientCertificate({
        role: 'risk-model',
        id: 'gpu-3',
        ttlMs: HOUR,
        publicKey: pair.publicKey,
      });
      const key = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      const reply = await call({ cert: issued.certPem, key, maxVersion });
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body)).toMatchObject({ role: 'risk-model', id: 'gpu-3' });
    },
  );

  it('fails the handshake for a certificate from another CA, and without a certificate', async () => {
    const other = await CertificateAuthority.create({ trustDomain: TD });
    const foreign = await other.issueClientCertificate({ role: 'enricher', id: 'task-7f3a', ttlMs: HOUR });
    const before = handled;
    await expect(call({ cert: foreign.certPem, key: foreign.keyPem as string })).rejects.toThrow();
    await expect(call({})).rejects.toThrow();
    expect(handled).toBe(before);
  });

  it('completes the handshake but refuses a revoked certificate in the identity check', async () => {
    const issued = await ca.issueClientCertificate({ role: 'enricher', id: 'task-revoked', ttlMs: HOUR });
    revoked.add(issued.serial);
    const reply = await call({ cert: issued.certPem, key: issued.keyPem as string });
    expect(reply).toEqual({ status: 401, body: 'revoked' });
  });

  it('refuses a server certificate used as a client certificate', async () => {
    const tls = await ca.issueServerCertificate();
    // OpenSSL itself refuses a peer certificate without clientAuth usage.
    await expect(call({ cert: tls.certPem, key: tls.keyPem })).rejects.toThrow();
  });
});
