import type { X509Certificate } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { CertificateAuthority, IdentityRejectedError } from '../identity/index.js';
import type { EntryStore, Storage } from '../ports/storage.js';
import type { Role } from '../tasks/index.js';

const NS = 'sys';
const CA_KEY = 'cert.ca';
const ISSUED = 'cert.issued';
const REVOKED = 'cert.revoked';

/** What custos records about a client certificate it issued. */
interface IssuedRecord {
  role: string;
  /** The role's incarnation at issue (absent for roles of earlier builds). */
  role_id?: string;
}

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
  readonly #cipher: Cipher;
  readonly #ca: CertificateAuthority;

  private constructor(entries: EntryStore, cipher: Cipher, ca: CertificateAuthority) {
    this.#entries = entries;
    this.#cipher = cipher;
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
    return new CertService(entries, deps.cipher, await CertificateAuthority.load(serialized));
  }

  get caPem(): string {
    return this.#ca.certPem;
  }

  get trustDomain(): string {
    return this.#ca.trustDomain;
  }

  async issue(role: Pick<Role, 'name' | 'id'>, ttlMs: number): Promise<IssuedCertificate> {
    const id = randomBytes(9).toString('base64url');
    const issued = await this.#ca.issueClientCertificate({ role: role.name, id, ttlMs });
    // Only the serial, the role incarnation it was issued for and its expiry
    // are recorded (for revocation and logins), never the key. Sealed: an
    // attacker who can write storage must not rebind it to a new role.
    const record: IssuedRecord = { role: role.name, ...(role.id ? { role_id: role.id } : {}) };
    await this.#entries.put(ISSUED, issued.serial, sealJson(this.#cipher, ISSUED, issued.serial, record), {
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

  /**
   * Verifies a presented client certificate: chain, validity, clientAuth,
   * SPIFFE id, not revoked — and finds the role incarnation it was issued
   * for (`roleId`), so a certificate of a deleted role does not log in to a
   * namesake created since. A certificate custos has no record of is refused.
   */
  async verify(cert: X509Certificate | string) {
    const verified = await this.#ca.verifyClientCertificate(cert, {
      isRevoked: async (serial) => (await this.#entries.get(REVOKED, serial)) !== undefined,
    });
    const stored = await this.#entries.get(ISSUED, verified.serial);
    if (!stored) throw new IdentityRejectedError('cert', 'unknown_serial');
    let record: IssuedRecord;
    try {
      record = await openJson<IssuedRecord>(this.#cipher, ISSUED, verified.serial, stored.value);
    } catch {
      // Rows of earlier builds held the role name in clear: such a
      // certificate belongs to the role's first incarnation, the one without id.
      if (new TextDecoder().decode(stored.value) !== verified.role) {
        throw new IdentityRejectedError('cert', 'unknown_serial');
      }
      record = { role: verified.role };
    }
    if (record.role !== verified.role) throw new IdentityRejectedError('cert', 'unknown_serial');
    return { ...verified, roleId: record.role_id };
  }
}
