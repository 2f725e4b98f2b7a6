import { X509Certificate } from 'node:crypto';
import { normalizeCertificateSerial } from './certificate-serial.js';
import { IdentityRejectedError } from './identity-rejected-error.js';
import { parseWorkloadSpiffeId } from './spiffe-id.js';
import {
  AsnCertificate,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
} from './x509-runtime.js';

/** Why a client certificate was refused; for the audit log only. */
export type CertRejectReason =
  | 'malformed'
  | 'untrusted_issuer'
  | 'expired'
  | 'not_yet_valid'
  | 'not_a_leaf'
  | 'wrong_usage'
  | 'bad_spiffe_id'
  | 'foreign_trust_domain'
  | 'revoked'
  | 'revocation_unavailable';

/** Options for verifying a client certificate. */
export interface VerifyClientCertificateOptions {
  /**
   * Revocation lookup by normalised serial (lowercase hex, no leading zeros).
   * Consulted only after every cryptographic check passed. If it throws, the
   * certificate is refused: an unknown revocation state is not "not revoked".
   */
  isRevoked(serial: string): boolean | Promise<boolean>;
  /** Clock, for tests (ms since epoch). */
  now?: number;
}

/** The workload identity a verified client certificate proves. */
export interface VerifiedClientCertificate {
  spiffeId: string;
  trustDomain: string;
  role: string;
  id: string;
  /** Normalised serial: the key for revocation and audit. */
  serial: string;
  notAfter: Date;
}

const MAX_PEM_LENGTH = 16 * 1024;

/**
 * Verifies a client certificate against one CA certificate and trust domain.
 * See {@link CertificateAuthority.verifyClientCertificate}; this function
 * needs no private key, so a verifier can hold only the CA certificate.
 *
 * Even when the TLS layer already verified the chain (`requestCert` with
 * `ca`), this repeats the checks: the TLS options may be misconfigured
 * (`rejectUnauthorized: false`), and the TLS layer knows nothing of SPIFFE
 * IDs, trust domains or revocation.
 *
 * @example
 * ```ts
 * const who = await verifyClientCertificateWith(caCert, 'custos.internal', socket.getPeerX509Certificate(), {
 *   isRevoked: (serial) => revoked.has(serial),
 * });
 * ```
 */
export async function verifyClientCertificateWith(
  ca: X509Certificate,
  trustDomain: string,
  cert: string | X509Certificate,
  options: VerifyClientCertificateOptions,
): Promise<VerifiedClientCertificate> {
  const reject = (reason: CertRejectReason) => new IdentityRejectedError('cert', reason);

  let leaf: X509Certificate;
  let asn: AsnCertificate;
  try {
    if (typeof cert === 'string') {
      // Exactly one certificate: Node would silently take the first of a
      // bundle, and a bundle from a client is never what we meant to check.
      if (cert.length > MAX_PEM_LENGTH || cert.split('-----BEGIN CERTIFICATE-----').length !== 2)
        throw reject('malformed');
      leaf = new X509Certificate(cert);
    } else {
      leaf = cert;
    }
    asn = new AsnCertificate(leaf.raw);
  } catch {
    throw reject('malformed');
  }

  // Signature by the CA key (OpenSSL), and issuer name/key identifier match.
  // Both: `verify` alone proves the key, `checkIssued` that the certificate
  // claims this CA as issuer (and not, say, a sibling with the same key).
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) throw reject('untrusted_issuer');

  // No extra leeway here: the issuer already back-dated notBefore for skew.
  const now = options.now ?? Date.now();
  if (now < asn.notBefore.getTime()) throw reject('not_yet_valid');
  if (now > asn.notAfter.getTime()) throw reject('expired');

  try {
    // A CA certificate must not log in as a workload, even one of ours.
    const basic = asn.getExtension(BasicConstraintsExtension);
    if (basic?.ca) throw reject('not_a_leaf');
    // The certificate must be meant for client authentication: a server
    // certificate from the same CA (custos's own listener) is not an identity.
    const eku = asn.getExtension(ExtendedKeyUsageExtension);
    if (!eku?.usages.includes(ExtendedKeyUsage.clientAuth)) throw reject('wrong_usage');
    const ku = asn.getExtension(KeyUsagesExtension);
    if (ku && (!(ku.usages & KeyUsageFlags.digitalSignature) || ku.usages & KeyUsageFlags.keyCertSign)) {
      throw reject('wrong_usage');
    }
    // X.509-SVID: exactly one URI SAN, the SPIFFE ID. We also refuse any other
    // SAN type: custos issues none on client certificates, so their presence
    // means the certificate was not made by this code path.
    const san = asn.getExtension(SubjectAlternativeNameExtension);
    const names = san?.names.items ?? [];
    const only = names[0];
    if (names.length !== 1 || only?.type !== 'url') throw reject('bad_spiffe_id');
    const parsed = parseWorkloadSpiffeId(only.value);
    if (!parsed) throw reject('bad_spiffe_id');
    if (parsed.trustDomain !== trustDomain) throw reject('foreign_trust_domain');

    const serial = normalizeCertificateSerial(leaf.serialNumber);
    let revoked: boolean;
    try {
      revoked = await options.isRevoked(serial);
    } catch {
      throw reject('revocation_unavailable');
    }
    if (revoked !== false) throw reject('revoked');
    return { ...parsed, serial, notAfter: asn.notAfter };
  } catch (e) {
    if (e instanceof IdentityRejectedError) throw e;
    // An extension that does not parse (or an unsupported GeneralName type).
    throw reject('malformed');
  }
}
