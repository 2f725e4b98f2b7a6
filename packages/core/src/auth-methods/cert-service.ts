import type { X509Certificate } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { CertificateAuthority } from '../identity/index.js';
import type { EntryStore, Storage } from '../ports/storage.js';

const NS = 'sys';
const CA_KEY = 'cert.ca';
const ISSUED = 'cert.issued';
const REVOKED = 'cert.revoked';

export interface IssuedCertificate {
  cert_pem: string;
  key_pem: string;
  ca_pem: string;
  serial: string;
  spiffe_id: string;
  expire_time: string;
}

/**
 * custos's internal CA for mTLS workload identity: short-lived client
 * certificates with a SPIFFE-style URI SAN (`spiffe://<trust-domain>/role/<R>/<id>`).
 * The CA key lives behind the barrier; revocations are kept until the
 * certificate would have expired anyway.
 */
export class CertService {
  readonly #entries: EntryStore;
  readonly #ca: CertificateAuthority;

  private constructor(entries: EntryStore, ca: CertificateAuthority) {
    this.#entries = entries;
    this.#ca = ca;
  }

  /** Loads the CA (creating it on first unseal; two nodes agree on one via putIfAbsent). */
  static async load(
    deps: { storage: Pick<Storage, 'entries'>; cipher: Cipher },
    trustDomain: string,
  ): Promise<CertService> {
    const { entries } = deps.storage;
    let stored = await entries.get(NS, CA_KEY);
    if (!stored) {
      const created = await CertificateAuthority.create({ trustDomain });
      await entries.putIfAbsent(NS, CA_KEY, sealJson(deps.cipher, NS, CA_KEY, await created.serialize()));
      stored = await entries.get(NS, CA_KEY);
    }
    const serialized = await openJson<{ certPem: string; keyPem: string }>(deps.cipher, NS, CA_KEY, stored!.value);
    return new CertService(entries, await CertificateAuthority.load(serialized));
  }

  get caPem(): string {
    return this.#ca.certPem;
  }

  get trustDomain(): string {
    return this.#ca.trustDomain;
  }

  async issue(role: string, ttlMs: number): Promise<IssuedCertificate> {
    const id = randomBytes(9).toString('base64url');
    const issued = await this.#ca.issueClientCertificate({ role, id, ttlMs });
    // Only the serial and its expiry are recorded (for revocation), never the key.
    await this.#entries.put(ISSUED, issued.serial, new TextEncoder().encode(role), {
      expiresAt: issued.notAfter.getTime(),
    });
    return {
      cert_pem: issued.certPem,
      key_pem: issued.keyPem ?? '',
      ca_pem: this.#ca.certPem,
      serial: issued.serial,
      spiffe_id: issued.spiffeId,
      expire_time: issued.notAfter.toISOString(),
    };
  }

  /** A TLS server certificate for custos itself, from the same CA. */
  issueServerCertificate(options: { dnsNames?: string[]; ipAddresses?: string[] }) {
    return this.#ca.issueServerCertificate(options);
  }

  /** Revokes by serial; kept until the certificate's own expiry. */
  async revoke(serial: string): Promise<boolean> {
    const issued = await this.#entries.get(ISSUED, serial);
    if (!issued) return false;
    await this.#entries.put(REVOKED, serial, new Uint8Array([1]), { expiresAt: issued.expiresAt });
    return true;
  }

  /** Verifies a presented client certificate: chain, validity, clientAuth, SPIFFE id, not revoked. */
  verify(cert: X509Certificate | string) {
    return this.#ca.verifyClientCertificate(cert, {
      isRevoked: async (serial) => (await this.#entries.get(REVOKED, serial)) !== undefined,
    });
  }
}
