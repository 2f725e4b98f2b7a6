import {
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import { isIP } from 'node:net';
import { CustosError, ValidationError } from '../errors/index.js';
import { certificatePublicKeyDer } from './certificate-public-key.js';
import { newCertificateSerial, normalizeCertificateSerial } from './certificate-serial.js';
import {
  type VerifiedClientCertificate,
  type VerifyClientCertificateOptions,
  verifyClientCertificateWith,
} from './client-certificate-verify.js';
import { assertTrustDomain, formatWorkloadSpiffeId } from './spiffe-id.js';
import {
  AsnCertificate,
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509CertificateGenerator,
} from './x509-runtime.js';

/** Options for {@link CertificateAuthority.create}. */
export interface CreateCertificateAuthorityOptions {
  /** SPIFFE trust domain, e.g. `custos.internal`. */
  trustDomain: string;
  /** Lifetime of the root certificate; default 3650 days. */
  ttlDays?: number;
  /** Clock, for tests (ms since epoch). */
  now?: () => number;
}

/**
 * A CA as stored: both PEM. `keyPem` is the CA's private key (PKCS#8): store
 * this object only behind the barrier, never in a log or plain file.
 */
export interface SerializedCertificateAuthority {
  certPem: string;
  keyPem: string;
}

/** Options for {@link CertificateAuthority.issueClientCertificate}. */
export interface IssueClientCertificateOptions {
  role: string;
  /** The workload's identifier within the role (task id, agent instance). */
  id: string;
  /** Lifetime; at most {@link MAX_CLIENT_CERT_TTL_MS} and never past the CA's own expiry. */
  ttlMs: number;
  /**
   * The workload's public key (SPKI PEM or KeyObject), when it generated its
   * own key pair: then the private key never leaves the workload. Without it,
   * custos generates a P-256 key pair and returns the private key once.
   */
  publicKey?: string | KeyObject;
}

/** A client certificate just issued. */
export interface IssuedClientCertificate {
  certPem: string;
  /** PKCS#8 PEM private key, only when custos generated the key pair. Hand it over once; do not store it. */
  keyPem?: string;
  /** Normalised serial (lowercase hex): the key for revocation. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  spiffeId: string;
}

/** Options for {@link CertificateAuthority.issueServerCertificate}. */
export interface IssueServerCertificateOptions {
  /** DNS SANs; default `['localhost']`. */
  dnsNames?: string[];
  /** IP SANs; default `['127.0.0.1', '::1']`. */
  ipAddresses?: string[];
  /** Lifetime; default 30 days. */
  ttlMs?: number;
}

/** A TLS server certificate and its freshly generated key. */
export interface IssuedServerCertificate {
  certPem: string;
  keyPem: string;
  serial: string;
  notAfter: Date;
}

/** Client certificates are credentials of short-lived workloads: a month at most. */
export const MAX_CLIENT_CERT_TTL_MS = 30 * 86_400_000;
/** Back-dating of notBefore so that a workload whose clock is a little behind can use its certificate at once. */
export const CERT_CLOCK_SKEW_MS = 5 * 60_000;
const MAX_CA_TTL_DAYS = 36_500;
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

// ECDSA P-256 with SHA-256 for the CA key. Ed25519 would be smaller and
// simpler, but certificates *signed* with Ed25519 are not accepted by every
// TLS stack a workload may run (older OpenSSL builds, BoringSSL/Go's
// crypto/tls only recently, many HSMs and proxies); P-256 is accepted
// everywhere. Workloads may still bring Ed25519 keys of their own (tested).
const CA_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

/**
 * custos's internal certificate authority for mTLS workload identities.
 *
 * Issues short-lived X.509-SVID-style client certificates whose only SAN is
 * `spiffe://<trust-domain>/role/<role>/<id>`, verifies them (chain, validity,
 * usage, SPIFFE ID, revocation), and issues the server's own TLS certificate.
 *
 * @example
 * ```ts
 * const ca = await CertificateAuthority.create({ trustDomain: 'custos.internal' });
 * await barrierStore.put('ca', ca.serialize()); // private key: behind the barrier only
 * const { certPem, keyPem, serial } = await ca.issueClientCertificate({ role: 'enricher', id: 'task-7f3a', ttlMs: 3_600_000 });
 * // … later, on an mTLS connection:
 * const who = await ca.verifyClientCertificate(socket.getPeerX509Certificate(), { isRevoked: (s) => revoked.has(s) });
 * ```
 */
export class CertificateAuthority {
  readonly trustDomain: string;
  /** The root certificate (PEM): give it to TLS as `ca`, and to workloads to trust the server. */
  readonly certPem: string;
  readonly #cert: X509Certificate;
  readonly #asn: AsnCertificate;
  readonly #signingKey: webcrypto.CryptoKey;
  readonly #now: () => number;

  private constructor(trustDomain: string, certPem: string, signingKey: webcrypto.CryptoKey, now: () => number) {
    this.trustDomain = trustDomain;
    this.certPem = certPem;
    this.#cert = new X509Certificate(certPem);
    this.#asn = new AsnCertificate(certPem);
    this.#signingKey = signingKey;
    this.#now = now;
  }

  /** Creates a new self-signed root for `trustDomain`. */
  static async create(options: CreateCertificateAuthorityOptions): Promise<CertificateAuthority> {
    assertTrustDomain(options.trustDomain);
    const ttlDays = options.ttlDays ?? 3650;
    if (!(Number.isInteger(ttlDays) && ttlDays > 0 && ttlDays <= MAX_CA_TTL_DAYS)) {
      throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    }
    const now = options.now ?? Date.now;
    const t = now();
    const keys = await webcrypto.subtle.generateKey(CA_KEY_ALGORITHM, true, ['sign', 'verify']);
    const cert = await X509CertificateGenerator.createSelfSigned({
      serialNumber: newCertificateSerial(),
      name: `CN=custos CA ${options.trustDomain}, O=custos`,
      notBefore: new Date(t - CERT_CLOCK_SKEW_MS),
      notAfter: new Date(t + ttlDays * 86_400_000),
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        // pathLen 0: this root signs leaves only; a leaf that somehow got
        // cA=true still could not act as an intermediate.
        new BasicConstraintsExtension(true, 0, true),
        new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
        await SubjectKeyIdentifierExtension.create(keys.publicKey),
        // The trust domain is recorded in the certificate itself (SPIFFE
        // allows the bare trust-domain ID on a CA), so a stored CA cannot be
        // re-labelled with another trust domain.
        new SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${options.trustDomain}` }]),
      ],
    });
    return new CertificateAuthority(options.trustDomain, cert.toString('pem'), keys.privateKey, now);
  }

  /**
   * Loads a CA from {@link serialize}d form. Refuses a certificate that is
   * not a CA, carries no trust domain, or does not match the private key.
   */
  static async load(
    stored: SerializedCertificateAuthority,
    options: { now?: () => number } = {},
  ): Promise<CertificateAuthority> {
    let cert: X509Certificate;
    let asn: AsnCertificate;
    let keyObject: KeyObject;
    try {
      cert = new X509Certificate(stored.certPem);
      asn = new AsnCertificate(stored.certPem);
      keyObject = createPrivateKey(stored.keyPem);
    } catch {
      throw new ValidationError('The stored CA does not parse.');
    }
    if (!cert.ca || keyObject.asymmetricKeyType !== 'ec') throw new ValidationError('The stored CA is not a CA.');
    // Sign and verify a probe: a swapped key would otherwise surface only as
    // every issued certificate failing verification.
    const probe = Buffer.from('custos-ca-key-check');
    if (!verify('sha256', probe, cert.publicKey, sign('sha256', probe, keyObject))) {
      throw new ValidationError('The stored CA key does not match its certificate.');
    }
    const uri = asn.getExtension(SubjectAlternativeNameExtension)?.names.items.find((n) => n.type === 'url')?.value;
    const trustDomain = uri?.startsWith('spiffe://') ? uri.slice('spiffe://'.length) : '';
    assertTrustDomain(trustDomain);
    const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
    const signingKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, CA_KEY_ALGORITHM, true, ['sign']);
    pkcs8.fill(0);
    return new CertificateAuthority(trustDomain, asn.toString('pem'), signingKey, options.now ?? Date.now);
  }

  /** When the root certificate expires. */
  get notAfter(): Date {
    return this.#asn.notAfter;
  }

  /**
   * The CA with its private key, for storage behind the barrier.
   * Deliberately not `toJSON`: `JSON.stringify(ca)` in a log line must not
   * write the key out (see {@link toJSON}).
   */
  async serialize(): Promise<SerializedCertificateAuthority> {
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', this.#signingKey));
    const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
    pkcs8.fill(0);
    return { certPem: this.certPem, keyPem };
  }

  /** Public parts only, so that logging the CA object cannot leak its key. */
  toJSON(): { trustDomain: string; certPem: string } {
    return { trustDomain: this.trustDomain, certPem: this.certPem };
  }

  /**
   * Issues a client certificate for workload `role`/`id`.
   *
   * @example
   * ```ts
   * const { certPem, keyPem } = await ca.issueClientCertificate({ role: 'enricher', id: 'task-7f3a', ttlMs: 3_600_000 });
   * ```
   */
  async issueClientCertificate(options: IssueClientCertificateOptions): Promise<IssuedClientCertificate> {
    const spiffeId = formatWorkloadSpiffeId(this.trustDomain, options.role, options.id);
    const ttlMs = options.ttlMs;
    if (!(Number.isFinite(ttlMs) && ttlMs > 0 && ttlMs <= MAX_CLIENT_CERT_TTL_MS)) {
      throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    }
    const { publicKeyDer, keyPem } = keyMaterial(options.publicKey);
    const issued = await this.#issueLeaf({
      subject: `CN=${options.id}, OU=${options.role}, O=custos`,
      publicKeyDer,
      ttlMs,
      eku: ExtendedKeyUsage.clientAuth,
      // Critical like SPIFFE asks when the subject is not meaningful: a
      // relying party that cannot read the SAN must not accept the cert.
      san: new SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
    });
    return { ...issued, ...(keyPem === undefined ? {} : { keyPem }), spiffeId };
  }

  /**
   * Issues the server's own TLS certificate (serverAuth, DNS + IP SANs) so a
   * dev server or a test can run an mTLS listener that workloads trust
   * through the same root.
   *
   * @example
   * ```ts
   * const tls = await ca.issueServerCertificate();
   * https.createServer({ key: tls.keyPem, cert: tls.certPem, ca: [ca.certPem], requestCert: true });
   * ```
   */
  async issueServerCertificate(options: IssueServerCertificateOptions = {}): Promise<IssuedServerCertificate> {
    const dnsNames = options.dnsNames ?? ['localhost'];
    const ipAddresses = options.ipAddresses ?? ['127.0.0.1', '::1'];
    const ttlMs = options.ttlMs ?? 30 * 86_400_000;
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    if (dnsNames.length + ipAddresses.length === 0) throw new ValidationError('A server certificate needs a name.');
    for (const d of dnsNames) if (!DNS_NAME.test(d)) throw new ValidationError('Invalid DNS name.');
    for (const ip of ipAddresses) if (isIP(ip) === 0) throw new ValidationError('Invalid IP address.');
    const { publicKeyDer, keyPem } = keyMaterial(undefined);
    const issued = await this.#issueLeaf({
      subject: `CN=${dnsNames[0] ?? ipAddresses[0]}, O=custos`,
      publicKeyDer,
      ttlMs,
      eku: ExtendedKeyUsage.serverAuth,
      san: new SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
    });
    return { certPem: issued.certPem, keyPem: keyPem as string, serial: issued.serial, notAfter: issued.notAfter };
  }

  /**
   * Verifies a client certificate presented to custos: signed by this CA,
   * within its validity window, a leaf with the clientAuth usage, exactly one
   * SPIFFE ID in this trust domain, and not revoked. Throws
   * {@link IdentityRejectedError} (a `CertRejectReason` for the audit log).
   *
   * @example
   * ```ts
   * const { role, id, serial } = await ca.verifyClientCertificate(req.socket.getPeerX509Certificate()!, {
   *   isRevoked: (serial) => leases.isCertRevoked(serial),
   * });
   * ```
   */
  verifyClientCertificate(
    cert: string | X509Certificate,
    options: VerifyClientCertificateOptions,
  ): Promise<VerifiedClientCertificate> {
    return verifyClientCertificateWith(this.#cert, this.trustDomain, cert, { now: this.#now(), ...options });
  }

  async #issueLeaf(leaf: {
    subject: string;
    publicKeyDer: Buffer;
    ttlMs: number;
    eku: ExtendedKeyUsage;
    san: SubjectAlternativeNameExtension;
  }): Promise<{ certPem: string; serial: string; notBefore: Date; notAfter: Date }> {
    const t = this.#now();
    const caNotBefore = this.#asn.notBefore.getTime();
    const caNotAfter = this.#asn.notAfter.getTime();
    if (t >= caNotAfter) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    // A leaf never outlives (or predates) its issuer: verifiers would refuse
    // the chain at that point anyway, and failing early is clearer.
    const notBefore = new Date(Math.max(t - CERT_CLOCK_SKEW_MS, caNotBefore));
    const notAfter = new Date(Math.floor(Math.min(t + leaf.ttlMs, caNotAfter) / 1000) * 1000);
    const serial = newCertificateSerial();
    const cert = await X509CertificateGenerator.create({
      serialNumber: serial,
      subject: leaf.subject,
      issuer: this.#asn.subject,
      notBefore,
      notAfter,
      publicKey: leaf.publicKeyDer,
      signingKey: this.#signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        new ExtendedKeyUsageExtension([leaf.eku]),
        leaf.san,
        await SubjectKeyIdentifierExtension.create(leaf.publicKeyDer),
        await AuthorityKeyIdentifierExtension.create(this.#asn.publicKey),
      ],
    });
    return { certPem: cert.toString('pem'), serial: normalizeCertificateSerial(serial), notBefore, notAfter };
  }
}

function keyMaterial(publicKey: string | KeyObject | undefined): { publicKeyDer: Buffer; keyPem?: string } {
  if (publicKey !== undefined) return { publicKeyDer: certificatePublicKeyDer(publicKey) };
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    publicKeyDer: pair.publicKey.export({ type: 'spki', format: 'der' }),
    keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}
