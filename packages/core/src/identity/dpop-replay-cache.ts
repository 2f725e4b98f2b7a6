/**
 * Remembers DPoP proof identifiers until the proof would be too old anyway.
 * A storage-backed implementation (shared by several custos nodes) may be
 * asynchronous.
 */
export interface DpopReplayCache {
  /**
   * Records `key` and returns false the first time; returns true if `key` was
   * already recorded and has not yet expired. `expiresAtMs` is when the entry
   * may be forgotten. Throwing makes the proof be refused (fail closed).
   */
  seen(key: string, expiresAtMs: number): boolean | Promise<boolean>;
}

/** Options for {@link MemoryDpopReplayCache}. */
export interface MemoryDpopReplayCacheOptions {
  /** Upper bound on remembered proofs; default 100 000 (about 10 MB). */
  maxEntries?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * A bounded in-memory {@link DpopReplayCache} for a single node.
 *
 * When full of unexpired entries it throws rather than evicting: evicting a
 * live entry would let that proof be replayed, so an attacker who floods the
 * cache could reopen replay for everyone else. Refusing new proofs until
 * entries expire (at most one proof window later) trades availability for
 * that guarantee; size the bound to the expected proof rate × window.
 *
 * @example
 * ```ts
 * const replay = new MemoryDpopReplayCache({ maxEntries: 50_000 });
 * await verifyDpopProof(proof, { method: 'POST', url, replay });
 * ```
 */
export class MemoryDpopReplayCache implements DpopReplayCache {
  // Insertion order ~ expiry order (expiry = iat + window), so sweeping from
  // the front stops at the first live entry: amortised O(1) per call.
  readonly #entries = new Map<string, number>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(options: MemoryDpopReplayCacheOptions = {}) {
    this.#max = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  /** Number of remembered proofs. */
  get size(): number {
    return this.#entries.size;
  }

  seen(key: string, expiresAtMs: number): boolean {
    const now = this.#now();
    this.#sweep(now, false);
    const existing = this.#entries.get(key);
    if (existing !== undefined && existing > now) return true;
    if (existing !== undefined) this.#entries.delete(key);
    if (this.#entries.size >= this.#max) {
      this.#sweep(now, true);
      if (this.#entries.size >= this.#max) throw new Error('DPoP replay cache is full');
    }
    this.#entries.set(key, expiresAtMs);
    return false;
  }

  #sweep(now: number, full: boolean): void {
    for (const [key, exp] of this.#entries) {
      if (exp <= now) this.#entries.delete(key);
      else if (!full) return;
    }
  }
}
