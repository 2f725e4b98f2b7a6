import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { CustosError, UnauthenticatedError, ValidationError } from '../errors/index.js';
import { CERT_CLOCK_SKEW_MS, CertificateAuthority, MAX_CLIENT_CERT_TTL_MS } from './certificate-authority.js';
import { normalizeCertificateSerial } from './certificate-serial.js';
import { IdentityRejectedError } from './identity-rejected-error.js';
import { forgeLeaf } from './test-support/forge-certificate.js';
import { KeyUsageFlags } from './x509-runtime.js';

const TD = 'custos.test';
const HOUR = 3_600_000;
const notRevoked = { isRevoked: () => false };

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;

async function expectRejected(p: Promise<unknown>, reason: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(IdentityRejectedError);
  expect(e).toBeInstanceOf(UnauthenticatedError);
  expect((e as IdentityRejectedError).auditReason).toBe(reason);
  expect((e as IdentityRejectedError).method).toBe('cert');
  expect((e as IdentityRejectedError).message).toBe(new UnauthenticatedError().message);
}

beforeAll(async () => {
  // Same trust domain on purpose: a foreign CA must be refused by its key,
  // not merely by its name.
  [ca, otherCa] = await Promise.all([
    CertificateAuthority.create({ trustDomain: TD }),
    CertificateAuthority.create({ trustDomain: TD }),
  ]);
});

describe('CertificateAuthority root', () => {
  it('is a self-signed P-256 CA carrying its trust domain', () => {
    const root = new X509Certificate(ca.certPem);
    expect(root.ca).toBe(true);
    expect(root.checkIssued(root)).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);
    expect(root.publicKey.asymmetricKeyType).toBe('ec');
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(root.subjectAltName).toBe(`URI:spiffe://${TD}`);
    expect(ca.trustDomain).toBe(TD);
    expect(ca.notAfter.getTime()).toBeGreaterThan(Date.now() + 3000 * 86_400_000);
  });

  it('never writes its private key through JSON.stringify', async () => {
    const json = JSON.stringify({ ca });
    expect(json).not.toContain('PRIVATE KEY');
    const stored = await ca.serialize();
    expect(json).toContain(JSON.stringify(stored.certPem).slice(1, 40));
    expect(stored.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n$/);
  });

  it('round-trips through serialize/load: certificates of one verify under the other', async () => {
    const loaded = await CertificateAuthority.load(await ca.serialize());
    expect(loaded.trustDomain).toBe(TD);
    expect(loaded.certPem).toBe(ca.certPem);
    const fromLoaded = await loaded.issueClientCertificate({ role: 'enricher', id: 'task-1', ttlMs: HOUR });
    await expect(ca.verifyClientCertificate(fromLoaded.certPem, notRevoked)).resolves.toMatchObject({ id: 'task-1' });
    const fromOriginal = await ca.issueClientCertificate({ role: 'enricher', id: 'task-2', ttlMs: HOUR });
    await expect(loaded.verifyClientCertificate(fromOriginal.certPem, notRevoked)).resolves.toMatchObject({
      id: 'task-2',
    });
  });

  it('refuses to load a certificate with the wrong key, or a leaf as a CA', async () => {
    const a = await ca.serialize();
    const b = await otherCa.serialize();
    await expect(CertificateAuthority.load({ certPem: a.certPem, keyPem: b.keyPem })).rejects.toThrow(ValidationError);
    const leaf = await ca.issueClientCertificate({ role: 'r', id: 'i', ttlMs: HOUR });
    await expect(CertificateAuthority.load({ certPem: leaf.certPem, keyPem: leaf.keyPem as string })).rejects.toThrow(
      ValidationError,
    );
    await expect(CertificateAuthority.load({ certPem: 'nope', keyPem: 'nope' })).rejects.toThrow(ValidationError);
  });

  it('refuses an invalid trust domain or lifetime', async () => {
    for (const trustDomain of ['', 'Custos.Test', 'custos.test:8443', 'a/b', '.custos']) {
      await expect(CertificateAuthority.create({ trustDomain })).rejects.toThrow(ValidationError);
    }
    await expect(CertificateAuthority.create({ trustDomain: TD, ttlDays: 0 })).rejects.toThrow(CustosError);
  });
});

describe('CertificateAuthority.issueClientCertificate', () => {
  it('issues a short-lived clientAuth certificate whose only SAN is the SPIFFE ID', async () => {
    const before = Date.now();
    const issued = await ca.issueClientCertificate({ role: 'enricher', id: 'task-7f3a', ttlMs: HOUR });
    const cert = new X509Certificate(issued.certPem);
    expect(issued.spiffeId).toBe(`spiffe://${TD}/role/enricher/task-7f3a`);
    expect(cert.subjectAltName).toBe(`URI:${issued.spiffeId}`);
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // Node lists the extended key usages here
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(normalizeCertificateSerial(cert.serialNumber)).toBe(issued.serial);
    expect(issued.serial).toMatch(/^[4-7][0-9a-f]{31}$/);
    // Back-dated for clock skew, expiring after ttl.
    expect(issued.notBefore.getTime()).toBeLessThanOrEqual(before - CERT_CLOCK_SKEW_MS + 1000);
    expect(issued.notAfter.getTime()).toBeGreaterThan(before + HOUR - 2000);
    expect(issued.notAfter.getTime()).toBeLessThanOrEqual(Date.now() + HOUR);
    expect(new Date(cert.validTo).getTime()).toBe(issued.notAfter.getTime());
    // The returned key is the certificate's key.
    expect(cert.checkPrivateKey(createPrivateKey(issued.keyPem as string))).toBe(true);

    const who = await ca.verifyClientCertificate(issued.certPem, notRevoked);
    expect(who).toEqual({
      spiffeId: issued.spiffeId,
      trustDomain: TD,
      role: 'enricher',
      id: 'task-7f3a',
      serial: issued.serial,
      notAfter: issued.notAfter,
    });
  });

  it.each([
    ['P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey],
    ['Ed25519', () => generateKeyPairSync('ed25519').publicKey],
    [
      'RSA-2048 as PEM',
      () =>
        generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string,
    ],
  ])('certifies a workload-generated %s key without ever seeing the private key', async (_label, make) => {
    const publicKey = make();
    const issued = await ca.issueClientCertificate({ role: 'risk-model', id: 'gpu-3', ttlMs: HOUR, publicKey });
    expect(issued.keyPem).toBeUndefined();
    const certKey = new X509Certificate(issued.certPem).publicKey.export({ type: 'spki', format: 'pem' });
    expect(certKey).toBe(
      (typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey).export({ type: 'spki', format: 'pem' }),
    );
    await expect(ca.verifyClientCertificate(issued.certPem, notRevoked)).resolves.toMatchObject({ role: 'risk-model' });
  });

  it('refuses private keys, weak keys, bad names and bad lifetimes', async () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privatePem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await expect(ca.issueClientCertificate({ role: 'r', id: 'i', ttlMs: HOUR, publicKey: privatePem })).rejects.toThrow(
      ValidationError,
    );
    await expect(
      ca.issueClientCertificate({ role: 'r', id: 'i', ttlMs: HOUR, publicKey: pair.privateKey }),
    ).rejects.toThrow(ValidationError);
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    await expect(ca.issueClientCertificate({ role: 'r', id: 'i', ttlMs: HOUR, publicKey: weak })).rejects.toThrow(
      ValidationError,
    );
    const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
    await expect(ca.issueClientCertificate({ role: 'r', id: 'i', ttlMs: HOUR, publicKey: secp256k1 })).rejects.toThrow(
      ValidationError,
    );
    for (const [role, id] of [
      ['..', 'i'],
      ['r', 'a/b'],
      ['r', ''],
      ['r', 'a%2Fb'],
      ['r o', 'i'],
      ['r', 'x'.repeat(129)],
    ]) {
      await expect(ca.issueClientCertificate({ role: role as string, id: id as string, ttlMs: HOUR })).rejects.toThrow(
        ValidationError,
      );
    }
    for (const ttlMs of [0, -1, Number.NaN, MAX_CLIENT_CERT_TTL_MS + 1]) {
      await expect(ca.issueClientCertificate({ role: 'r', id: 'i', ttlMs })).rejects.toThrow(CustosError);
    }
  });

  it('never issues a certificate that outlives the CA', async () => {
    const shortCa = await CertificateAuthority.create({ trustDomain: TD, ttlDays: 1 });
    const issued = await shortCa.issueClientCertificate({ role: 'r', id: 'i', ttlMs: 10 * 86_400_000 });
    expect(issued.notAfter.getTime()).toBeLessThanOrEqual(shortCa.notAfter.getTime());
  });
});

describe('CertificateAuthority.verifyClientCertificate refuses', () => {
  it('a certificate from another CA, even with the same trust domain', async () => {
    const foreign = await otherCa.issueClientCertificate({ role: 'enricher', id: 'task-1', ttlMs: HOUR });
    await expectRejected(ca.verifyClientCertificate(foreign.certPem, notRevoked), 'untrusted_issuer');
  });

  it('an expired and a not-yet-valid certificate', async () => {
    const issued = await ca.issueClientCertificate({ role: 'r', id: 'i', ttlMs: HOUR });
    await expectRejected(
      ca.verifyClientCertificate(issued.certPem, { ...notRevoked, now: Date.now() + 2 * HOUR }),
      'expired',
    );
    await expectRejected(
      ca.verifyClientCertificate(issued.certPem, { ...notRevoked, now: Date.now() - HOUR }),
      'not_yet_valid',
    );
    // An issued-in-the-past CA clock: the certificate is already expired for everyone else.
    const pastCa = await CertificateAuthority.load(await ca.serialize(), { now: () => Date.now() - 2 * HOUR });
    const stale = await pastCa.issueClientCertificate({ role: 'r', id: 'i', ttlMs: HOUR });
    await expectRejected(ca.verifyClientCertificate(stale.certPem, notRevoked), 'expired');
  });

  it('a revoked certificate, and one whose revocation state is unknown', async () => {
    const issued = await ca.issueClientCertificate({ role: 'r', id: 'i', ttlMs: HOUR });
    const revoked = new Set([issued.serial]);
    await expectRejected(ca.verifyClientCertificate(issued.certPem, { isRevoked: (s) => revoked.has(s) }), 'revoked');
    await expectRejected(
      ca.verifyClientCertificate(issued.certPem, {
        isRevoked: async () => {
          throw new Error('storage down');
        },
      }),
      'revocation_unavailable',
    );
  });

  it('the server certificate and the CA certificate themselves', async () => {
    const server = await ca.issueServerCertificate();
    await expectRejected(ca.verifyClientCertificate(server.certPem, notRevoked), 'wrong_usage');
    await expectRejected(ca.verifyClientCertificate(ca.certPem, notRevoked), 'not_a_leaf');
  });

  it('certificates signed by the CA key that the CA would never issue', async () => {
    const stored = await ca.serialize();
    const spiffe = `spiffe://${TD}/role/r/i`;
    const cases: [Parameters<typeof forgeLeaf>[1], string][] = [
      [{ names: [{ type: 'url', value: 'spiffe://evil.test/role/r/i' }] }, 'foreign_trust_domain'],
      [
        {
          names: [
            { type: 'url', value: spiffe },
            { type: 'url', value: `spiffe://${TD}/role/admin/i` },
          ],
        },
        'bad_spiffe_id',
      ],
      [
        {
          names: [
            { type: 'url', value: spiffe },
            { type: 'dns', value: 'localhost' },
          ],
        },
        'bad_spiffe_id',
      ],
      [{ names: [{ type: 'url', value: `spiffe://${TD}/role/r/../admin` }] }, 'bad_spiffe_id'],
      [{ names: [{ type: 'url', value: `https://${TD}/role/r/i` }] }, 'bad_spiffe_id'],
      [{ names: [{ type: 'url', value: `spiffe://${TD}/role/r/i?x=1` }] }, 'bad_spiffe_id'],
      [{ names: [{ type: 'url', value: spiffe }], eku: [] }, 'wrong_usage'],
      [{ names: [{ type: 'url', value: spiffe }], eku: ['1.3.6.1.5.5.7.3.1'] }, 'wrong_usage'],
      [{ names: [{ type: 'url', value: spiffe }], keyUsage: KeyUsageFlags.keyEncipherment }, 'wrong_usage'],
      [{ names: [{ type: 'url', value: spiffe }], isCa: true }, 'not_a_leaf'],
    ];
    for (const [leaf, reason] of cases) {
      const forged = await forgeLeaf(stored, leaf);
      await expectRejected(ca.verifyClientCertificate(forged.certPem, notRevoked), reason);
    }
    // The forging helper itself produces acceptable certificates when asked to.
    const ok = await forgeLeaf(stored, { names: [{ type: 'url', value: spiffe }] });
    await expect(ca.verifyClientCertificate(ok.certPem, notRevoked)).resolves.toMatchObject({
      role: 'r',
      id: 'i',
      serial: '7abc',
    });
  });

  it('garbage, a bundle of two certificates, and a tampered certificate', async () => {
    const a = await ca.issueClientCertificate({ role: 'r', id: 'a', ttlMs: HOUR });
    await expectRejected(ca.verifyClientCertificate('not a certificate', notRevoked), 'malformed');
    await expectRejected(ca.verifyClientCertificate(a.certPem + ca.certPem, notRevoked), 'malformed');
    const der = new X509Certificate(a.certPem).raw;
    // Flip a byte inside the signed part (the SAN's last character).
    const i = der.lastIndexOf(Buffer.from('/a'));
    der[i + 1] = 'b'.charCodeAt(0);
    const tampered = `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
    await expectRejected(ca.verifyClientCertificate(tampered, notRevoked), 'untrusted_issuer');
  });
});
