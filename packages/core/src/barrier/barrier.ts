import { randomBytes } from 'node:crypto';
import type { Cipher } from '../common/index.js';
import { IntegrityError, SealedError, StorageError } from '../errors/index.js';
import type { EntryStore } from '../ports/index.js';
import { blobTerm, KEY_BYTES, MAX_TERM, openBlob, sealBlob } from './barrier-blob.js';
import { Keyring } from './keyring.js';
import { claimTerm, highestStoredTerm, type KeyringBinding, readTerms } from './keyring-store.js';

/** How many times {@link Barrier.rotate} tries the next term when other nodes keep taking it. */
const ROTATE_ATTEMPTS = 16;

interface Unsealed {
  readonly rootKey: Buffer;
  readonly binding: KeyringBinding;
  readonly keyring: Keyring;
}

/**
 * The barrier: the single point of encryption and integrity between custos
 * and its untrusted storage. AES-256-GCM with per-term data keys (see
 * {@link sealBlob} for the format); the data keys are encrypted with the root
 * key, which a seal provides.
 *
 * While sealed it holds no key and every operation throws {@link SealedError}.
 * Unsealing, sealing and initialisation belong to the seal manager; domain
 * services only call {@link encrypt} and {@link decrypt} / {@link decryptAsync}.
 *
 * @example
 * ```ts
 * const blob = barrier.encrypt('kv.version\0kv/app/db\u00003', plaintext);
 * const back = await barrier.decryptAsync('kv.version\0kv/app/db\u00003', blob);
 * ```
 */
export class Barrier implements Cipher {
  readonly #store: EntryStore;
  #state: Unsealed | undefined;
  /** A reload in flight, shared by every caller that meets an unknown term. */
  #reloading: Promise<void> | undefined;

  constructor(store: EntryStore) {
    this.#store = store;
  }

  /** True while no key is held. */
  get sealed(): boolean {
    return this.#state === undefined;
  }

  /** The term new writes use; undefined while sealed. */
  get term(): number | undefined {
    return this.#state?.keyring.activeTerm;
  }

  /**
   * Encrypts `plaintext` for the row named by `aad` with the newest term.
   * Synchronous and I/O-free: the keyring is in memory.
   */
  encrypt(aad: string, plaintext: Uint8Array): Uint8Array {
    const { keyring } = this.#unsealed();
    const term = keyring.activeTerm;
    return sealBlob(keyring.get(term)!, term, aad, plaintext);
  }

  /**
   * Decrypts a blob written for the row named by `aad`. Synchronous and
   * I/O-free. A blob of a term this node does not know yet (another node
   * rotated) throws {@link IntegrityError} and starts a keyring reload in the
   * background; {@link decryptAsync} waits for that reload and retries.
   */
  decrypt(aad: string, blob: Uint8Array): Uint8Array {
    const { keyring } = this.#unsealed();
    const term = blobTerm(blob);
    const key = keyring.get(term);
    if (key === undefined) {
      this.reload().catch(() => {});
      throw new IntegrityError();
    }
    return openBlob(key, aad, blob);
  }

  /**
   * Like {@link decrypt}, but a blob of an unknown term makes it reload the
   * keyring from storage once (another node may have rotated) and retry; only
   * then does it throw {@link IntegrityError}. Costs no I/O for known terms.
   */
  async decryptAsync(aad: string, blob: Uint8Array): Promise<Uint8Array> {
    const { keyring } = this.#unsealed();
    const term = blobTerm(blob);
    if (!keyring.has(term)) {
      // Storage is untrusted, so a forged header could name any term and
      // cause a reload per request; that costs one keyring scan, which an
      // attacker able to write storage could cause anyway. Concurrent misses
      // share one reload.
      await this.reload();
      const current = this.#unsealed().keyring;
      const key = current.get(term);
      if (key === undefined) throw new IntegrityError();
      return openBlob(key, aad, blob);
    }
    return openBlob(keyring.get(term)!, aad, blob);
  }

  /** Reads terms added by other nodes into memory. Concurrent calls share one read. */
  reload(): Promise<void> {
    this.#unsealed();
    if (this.#reloading === undefined) {
      this.#reloading = this.#loadNewTerms().finally(() => {
        this.#reloading = undefined;
      });
    }
    return this.#reloading;
  }

  /**
   * Adds a new key term and makes it the one new writes use. The term is
   * persisted (claimed with putIfAbsent) before it is used, so no blob ever
   * names a term that storage does not hold. If another node claimed the
   * same term first, both terms survive and this one takes the next.
   *
   * @returns the new term.
   */
  async rotate(): Promise<number> {
    const state = this.#unsealed();
    for (let attempt = 0; attempt < ROTATE_ATTEMPTS; attempt++) {
      const term = Math.max(state.keyring.activeTerm, await highestStoredTerm(this.#store, state.binding)) + 1;
      if (term > MAX_TERM) throw new IntegrityError();
      const key = randomBytes(KEY_BYTES);
      let claimed: boolean;
      try {
        claimed = await claimTerm(this.#store, state.rootKey, state.binding, term, key);
      } catch (e) {
        key.fill(0);
        throw e;
      }
      if (!claimed) {
        key.fill(0);
        continue;
      }
      if (this.#state !== state) {
        // Sealed while we were writing: the term is stored and will be
        // loaded at the next unseal, but this sealed barrier must hold no key.
        key.fill(0);
        throw new SealedError();
      }
      state.keyring.add(term, key);
      // Terms other nodes claimed meanwhile are below ours; pick them up so
      // their blobs open without a miss.
      await this.reload();
      return term;
    }
    // Every attempt lost to another node: storage is contended or misbehaving.
    throw new StorageError();
  }

  /**
   * Writes term 1 of a new keyring, encrypted with `rootKey`. Used once, at
   * initialisation, before the seal configuration (the "initialised" marker)
   * is written. Does not unseal. `rootKey` stays the caller's.
   */
  async createKeyring(rootKey: Uint8Array, binding: KeyringBinding): Promise<void> {
    const key = randomBytes(KEY_BYTES);
    try {
      // The keyring id is fresh, so term 1 can only be absent; false means
      // storage does not behave as the port promises.
      if (!(await claimTerm(this.#store, rootKey, binding, 1, key))) throw new IntegrityError();
    } finally {
      key.fill(0);
    }
  }

  /**
   * Unseals with `rootKey`: decrypts the whole keyring, which also proves the
   * root key is the right one. Takes ownership of `rootKey` (zeroed on seal,
   * or at once if unsealing fails). Throws {@link IntegrityError} when the
   * key does not open the keyring or no keyring is stored.
   */
  async unseal(rootKey: Buffer, binding: KeyringBinding): Promise<void> {
    try {
      if (rootKey.length !== KEY_BYTES) throw new IntegrityError();
      const terms = await readTerms(this.#store, rootKey, binding);
      if (terms.size === 0) throw new IntegrityError();
      const keyring = new Keyring();
      for (const [term, key] of terms) keyring.add(term, key);
      this.seal();
      this.#state = { rootKey, binding, keyring };
    } catch (e) {
      rootKey.fill(0);
      throw e;
    }
  }

  /**
   * Lends a copy of the root key to `use` and zeroes the copy afterwards.
   * Only the seal manager calls this, to re-wrap the root key under a new
   * seal key (rotate-seal) or to re-encrypt the keyring for a seal migration;
   * domain services never see the root key.
   */
  async withRootKey<T>(use: (rootKey: Uint8Array, binding: KeyringBinding) => Promise<T>): Promise<T> {
    const state = this.#unsealed();
    const copy = Buffer.from(state.rootKey);
    try {
      return await use(copy, state.binding);
    } finally {
      copy.fill(0);
    }
  }

  /** Zeroes the root key and every data key, and returns to sealed. Idempotent. */
  seal(): void {
    const state = this.#state;
    this.#state = undefined;
    if (state === undefined) return;
    state.keyring.zero();
    state.rootKey.fill(0);
  }

  async #loadNewTerms(): Promise<void> {
    const state = this.#unsealed();
    const terms = await readTerms(this.#store, state.rootKey, state.binding, (t) => state.keyring.has(t));
    if (this.#state !== state) {
      // Sealed (or re-unsealed) during the read: keep nothing from it.
      for (const key of terms.values()) key.fill(0);
      return;
    }
    for (const [term, key] of terms) state.keyring.add(term, key);
  }

  #unsealed(): Unsealed {
    if (this.#state === undefined) throw new SealedError();
    return this.#state;
  }
}
