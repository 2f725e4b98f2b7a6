import { randomBytes } from 'node:crypto';
import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { isCustosError, NotFoundError } from '../errors/index.js';
import type { PolicyEngine } from '../policy/index.js';
import type { Storage } from '../ports/storage.js';

const POLICIES = 'policy';
/** Changes on every write or delete, so other nodes know to reload (see {@link PolicyService.refresh}). */
const REVISION_NS = 'sys';
const REVISION_KEY = 'policy.revision';

export interface StoredPolicy {
  name: string;
  policy: string;
  updated_time: string;
  updated_by: string;
  /**
   * Set (on read) when the stored text no longer validates — written by an
   * earlier build against an attribute since retired — and why. Such a
   * policy denies everything to whoever holds it until it is rewritten.
   */
  load_error?: string;
}

/**
 * Named Cedar policy documents: stored through the barrier (an attacker who
 * can write the database must not be able to widen a policy), parsed and
 * validated once on write, and kept preparsed in the engine.
 *
 * Several nodes (PostgreSQL HA) each keep their own engine: every change also
 * writes a new random revision marker, and each node's {@link refresh}
 * (run every second) reloads when the marker differs from what it loaded. A
 * policy changed on one node therefore takes effect on the others within
 * about a second; on the node that made the change, at once.
 */
export class PolicyService {
  readonly #storage: Pick<Storage, 'entries'>;
  readonly #cipher: Cipher;
  readonly #engine: PolicyEngine;
  /** Stored policies that no longer validate: name → the stored text and why (the engine holds them as invalid: their holders are denied everything). */
  readonly #unloadable = new Map<string, { policy: string; error: string }>();
  #revision: string | undefined;

  constructor(deps: { storage: Pick<Storage, 'entries'>; cipher: Cipher; engine: PolicyEngine }) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#engine = deps.engine;
  }

  /**
   * Loads every stored policy into the engine (at unseal, and on a refresh
   * that found a change): sets new and changed ones, removes deleted ones.
   *
   * A stored policy the engine now refuses (stored by an older version,
   * before a bound it exceeds or an attribute was retired) does not stop the
   * node from unsealing: it is held as invalid, which denies everything to
   * the principals holding it (its forbids cannot be enforced, so ignoring it
   * would fail open), and {@link read} reports why, until an operator
   * replaces or deletes it.
   */
  async load(): Promise<number> {
    const revision = await this.#readRevision();
    const seen = new Set<string>();
    for (const entry of await this.#storage.entries.scan(POLICIES, '', { limit: 10_000 })) {
      const stored = await openJson<StoredPolicy>(this.#cipher, POLICIES, entry.key, entry.value);
      seen.add(stored.name);
      if (this.#engine.get(stored.name) === stored.policy) continue;
      try {
        this.#engine.set(stored.name, stored.policy);
        this.#unloadable.delete(stored.name);
      } catch (error) {
        if (!(isCustosError(error) && error.code === 'CUSTOS_ERR_INVALID_POLICY')) throw error;
        this.#engine.setInvalid(stored.name, stored.policy);
        this.#unloadable.set(stored.name, { policy: stored.policy, error: error.message });
      }
    }
    for (const name of this.#engine.names()) {
      if (!seen.has(name)) {
        this.#engine.remove(name);
        this.#unloadable.delete(name);
      }
    }
    this.#revision = revision;
    return seen.size;
  }

  /** Reloads when another node changed a policy since the last load. One read when nothing changed. */
  async refresh(): Promise<boolean> {
    if ((await this.#readRevision()) === this.#revision) return false;
    await this.load();
    return true;
  }

  async list(): Promise<string[]> {
    return this.#storage.entries.list(POLICIES, '', { limit: 10_000 });
  }

  async read(name: string): Promise<StoredPolicy> {
    const entry = await this.#storage.entries.get(POLICIES, name);
    if (!entry) throw new NotFoundError();
    const stored = await openJson<StoredPolicy>(this.#cipher, POLICIES, name, entry.value);
    const unloadable = this.#unloadable.get(name);
    return unloadable?.policy === stored.policy ? { ...stored, load_error: unloadable.error } : stored;
  }

  /** Validates (parse + schema) before anything is stored; an invalid policy changes nothing. */
  async write(name: string, policy: string, actor: string): Promise<StoredPolicy> {
    this.#engine.validate(name, policy);
    const stored: StoredPolicy = { name, policy, updated_time: new Date().toISOString(), updated_by: actor };
    await this.#storage.entries.put(POLICIES, name, sealJson(this.#cipher, POLICIES, name, stored));
    this.#engine.set(name, policy);
    this.#unloadable.delete(name);
    await this.#bumpRevision();
    return stored;
  }

  async delete(name: string): Promise<void> {
    if (!(await this.#storage.entries.delete(POLICIES, name))) throw new NotFoundError();
    this.#engine.remove(name);
    this.#unloadable.delete(name);
    await this.#bumpRevision();
  }

  async #readRevision(): Promise<string> {
    const entry = await this.#storage.entries.get(REVISION_NS, REVISION_KEY);
    return entry ? Buffer.from(entry.value).toString('hex') : '';
  }

  async #bumpRevision(): Promise<void> {
    const revision = randomBytes(16);
    await this.#storage.entries.put(REVISION_NS, REVISION_KEY, revision);
    // This node is up to date with its own change.
    this.#revision = revision.toString('hex');
  }
}
