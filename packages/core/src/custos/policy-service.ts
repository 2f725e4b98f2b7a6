import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { NotFoundError } from '../errors/index.js';
import type { PolicyEngine } from '../policy/index.js';
import type { Storage } from '../ports/storage.js';

const POLICIES = 'policy';

export interface StoredPolicy {
  name: string;
  policy: string;
  updated_time: string;
  updated_by: string;
}

/**
 * Named Cedar policy documents: stored through the barrier (an attacker who
 * can write the database must not be able to widen a policy), parsed and
 * validated once on write, and kept preparsed in the engine.
 */
export class PolicyService {
  readonly #storage: Pick<Storage, 'entries'>;
  readonly #cipher: Cipher;
  readonly #engine: PolicyEngine;

  constructor(deps: { storage: Pick<Storage, 'entries'>; cipher: Cipher; engine: PolicyEngine }) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#engine = deps.engine;
  }

  /** Loads every stored policy into the engine (at unseal). */
  async load(): Promise<number> {
    let count = 0;
    for (const entry of await this.#storage.entries.scan(POLICIES, '', { limit: 10_000 })) {
      const stored = await openJson<StoredPolicy>(this.#cipher, POLICIES, entry.key, entry.value);
      this.#engine.set(stored.name, stored.policy);
      count++;
    }
    return count;
  }

  async list(): Promise<string[]> {
    return this.#storage.entries.list(POLICIES, '', { limit: 10_000 });
  }

  async read(name: string): Promise<StoredPolicy> {
    const entry = await this.#storage.entries.get(POLICIES, name);
    if (!entry) throw new NotFoundError();
    return await openJson<StoredPolicy>(this.#cipher, POLICIES, name, entry.value);
  }

  /** Validates (parse + schema) before anything is stored; an invalid policy changes nothing. */
  async write(name: string, policy: string, actor: string): Promise<StoredPolicy> {
    this.#engine.validate(name, policy);
    const stored: StoredPolicy = { name, policy, updated_time: new Date().toISOString(), updated_by: actor };
    await this.#storage.entries.put(POLICIES, name, sealJson(this.#cipher, POLICIES, name, stored));
    this.#engine.set(name, policy);
    return stored;
  }

  async delete(name: string): Promise<void> {
    if (!(await this.#storage.entries.delete(POLICIES, name))) throw new NotFoundError();
    this.#engine.remove(name);
  }
}
