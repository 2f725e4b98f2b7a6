import { createPrivateKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import type { SerializedCertificateAuthority } from '../certificate-authority.js';
import {
  AsnCertificate,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  X509CertificateGenerator,
} from '../x509-runtime.js';

type Name = { type: 'url' | 'dns' | 'ip' | 'email'; value: string };

/**
 * Signs an arbitrary leaf with a real CA key, bypassing the CA's own checks,
 * so tests can present the verifier with certificates the CA would never
 * issue (foreign trust domain, two URIs, wrong usage, CA flag).
 */
export async function forgeLeaf(
  ca: SerializedCertificateAuthority,
  leaf: { names: Name[]; eku?: string[]; isCa?: boolean; keyUsage?: number; notAfterMs?: number },
): Promise<{ certPem: string; keyPem: string }> {
  const der = createPrivateKey(ca.keyPem).export({ type: 'pkcs8', format: 'der' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
  ]);
  const caCert = new AsnCertificate(ca.certPem);
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const extensions = [
    new BasicConstraintsExtension(leaf.isCa ?? false, undefined, true),
    new KeyUsagesExtension(leaf.keyUsage ?? KeyUsageFlags.digitalSignature, true),
    new SubjectAlternativeNameExtension(leaf.names),
  ];
  const eku = leaf.eku ?? [ExtendedKeyUsage.clientAuth];
  if (eku.length > 0) extensions.push(new ExtendedKeyUsageExtension(eku));
  const cert = await X509CertificateGenerator.create({
    serialNumber: '7abc',
    subject: 'CN=forged',
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(leaf.notAfterMs ?? Date.now() + 3_600_000),
    publicKey: pair.publicKey.export({ type: 'spki', format: 'der' }),
    signingKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}
