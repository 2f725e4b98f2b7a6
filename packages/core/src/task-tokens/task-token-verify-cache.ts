import { createHash } from 'node:crypto';
import type { TaskTokenClaims } from './task-token-claims.js';

/** What a cache entry remembers: the exact token's signature was valid and these are its claims. */
export interface VerifiedTaskToken {
  readonly claims: TaskTokenClaims;
}

export const DEFAULT_VERIFY_CACHE_ENTRIES = 10_000;

/**
 * Remembers task tokens whose signature verified, so that a token presented
 * again (an agent's every API call, a coordinator minting many children)
 * skips the Ed25519 verification, which costs more than everything else in
 * the check together.
 *
 * Strictness is unchanged: a hit needs the byte-identical token (looked up
 * by SHA-256, so no bearer token is kept in memory longer than its request),
 * its key must still be live (the token's exact header must still name a
 * known, unretired key: kids are thumbprints, so that is the same key), and exp/nbf, issuer, audience and DPoP binding
 * are checked again on every use. Only tokens with a valid custos signature
 * get in, so forged tokens cannot fill it; at `maxEntries` the oldest entry
 * goes.
 */
export class VerifiedTaskTokenCache {
  readonly #entries = new Map<string, VerifiedTaskToken>();
  readonly #maxEntries: number;

  constructor(maxEntries = DEFAULT_VERIFY_CACHE_ENTRIES) {
    this.#maxEntries = maxEntries;
  }

  /** The lookup key of a token. */
  static digest(token: string): string {
    return createHash('sha256').update(token, 'latin1').digest('base64url');
  }

  get(digest: string): VerifiedTaskToken | undefined {
    return this.#entries.get(digest);
  }

  set(digest: string, entry: VerifiedTaskToken): void {
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(digest, entry);
  }

  delete(digest: string): void {
    this.#entries.delete(digest);
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
  }
}
