import { randomBytes } from 'node:crypto';
import type { AuditHmac } from '../audit/audit-hmac.js';
import { type Cipher, sealJson } from '../common/cipher.js';
import { OpenedEntryMemo } from '../common/opened-entry-memo.js';
import type { EntryStore } from '../ports/storage.js';
import type { HoneytokenRecord, HoneytokenWatch } from './honeytoken-types.js';

/** Namespace of the sealed marker entries. */
const NAMESPACE = 'honeytoken';
/** Honeytokens one deployment may hold: the in-memory sets stay small. */
export const MAX_HONEYTOKENS = 1_000;
/** Splits on whitespace, quotes, `=`, `:`, `,` and brackets — as `custos scan` tokenises text (vault-fingerprints.ts). */
const TOKEN = /[^\s"'`=:,;()[\]{}<>]+/g;

/**
 * Which secrets are honeytokens: a registry apart from the secrets, one
 * sealed entry per honeytoken under a random key. Storage sees neither the
 * path nor the kind — a reader of the database cannot tell a decoy from the
 * secret it imitates, only that some honeytokens exist (the entry count).
 *
 * The registry is held in memory as sets (paths, value fingerprints, value
 * lengths) so detection on hot paths — the anomaly rule per audit event, the
 * proxy per call, the auth hook per refused credential — is a set lookup,
 * never a storage read. {@link load} rebuilds the sets from storage; the
 * node calls it at unseal and on its refresh tick, so a honeytoken created
 * on another node of a cluster is watched here within a tick.
 */
export class HoneytokenRegistry implements HoneytokenWatch {
  readonly #entries: EntryStore;
  readonly #cipher: Cipher;
  readonly #hmac: AuditHmac;
  readonly #opened = new OpenedEntryMemo(MAX_HONEYTOKENS);
  #records = new Map<string, { key: string; record: HoneytokenRecord }>();
  #fingerprints = new Set<string>();
  #lengths = new Set<number>();
  /** Bumped by every local change: a load that began before one does not overwrite it with older storage. */
  #generation = 0;

  constructor(deps: { entries: EntryStore; cipher: Cipher; hmac: AuditHmac }) {
    this.#entries = deps.entries;
    this.#cipher = deps.cipher;
    this.#hmac = deps.hmac;
  }

  /** Reads every marker and replaces the in-memory sets at once (a reader never sees half a registry). */
  async load(): Promise<void> {
    const generation = this.#generation;
    const records = new Map<string, { key: string; record: HoneytokenRecord }>();
    for (const entry of await this.#entries.scan(NAMESPACE, '', { limit: MAX_HONEYTOKENS * 2 })) {
      const record = await this.#opened.openJson<HoneytokenRecord>(this.#cipher, NAMESPACE, entry.key, entry.value);
      records.set(record.path, { key: entry.key, record });
    }
    if (generation === this.#generation) this.#replace(records);
  }

  /** Every honeytoken, by path. */
  records(): HoneytokenRecord[] {
    return [...this.#records.values()].map((r) => r.record).sort((a, b) => a.path.localeCompare(b.path));
  }

  get size(): number {
    return this.#records.size;
  }

  /** Adds a marker (a fresh random key, so two nodes never collide) and watches it at once. */
  async add(record: HoneytokenRecord): Promise<void> {
    const key = `ht_${randomBytes(16).toString('hex')}`;
    await this.#entries.put(NAMESPACE, key, sealJson(this.#cipher, NAMESPACE, key, record));
    const next = new Map(this.#records);
    next.set(record.path, { key, record });
    this.#generation++;
    this.#replace(next);
  }

  /** Removes the marker of `path`; false when there is none. */
  async remove(path: string): Promise<boolean> {
    const known = this.#records.get(path);
    if (!known) return false;
    await this.#entries.delete(NAMESPACE, known.key);
    const next = new Map(this.#records);
    next.delete(path);
    this.#generation++;
    this.#replace(next);
    return true;
  }

  get watching(): boolean {
    return this.#fingerprints.size > 0;
  }

  hasPath(path: string): boolean {
    return this.#records.has(path);
  }

  hasFingerprint(hmac: string): boolean {
    return this.#fingerprints.has(hmac);
  }

  findValue(texts: Iterable<string>): string | undefined {
    if (this.#fingerprints.size === 0) return undefined;
    const test = (candidate: string): string | undefined => {
      if (!this.#lengths.has(candidate.length)) return undefined;
      const hmac = this.#hmac(candidate);
      return this.#fingerprints.has(hmac) ? hmac : undefined;
    };
    for (const text of texts) {
      const whole = test(text);
      if (whole) return whole;
      for (const m of text.matchAll(TOKEN)) {
        if (m[0].length === text.length) continue;
        const hit = test(m[0]);
        if (hit) return hit;
      }
    }
    return undefined;
  }

  #replace(records: Map<string, { key: string; record: HoneytokenRecord }>): void {
    const fingerprints = new Set<string>();
    const lengths = new Set<number>();
    for (const { record } of records.values()) {
      for (const f of record.fingerprints) fingerprints.add(f);
      for (const l of record.lengths) lengths.add(l);
    }
    this.#records = records;
    this.#fingerprints = fingerprints;
    this.#lengths = lengths;
  }
}
