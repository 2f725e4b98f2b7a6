import type { HoneytokenWatch } from '@custos/core';

/** Separators of `custos scan`'s tokens (vault-fingerprints.ts): a value never spans one. */
const SEPARATOR = /[\s"'`=:,;()[\]{}<>]/;
/** Longest run held across chunks: longer than any decoy value (the longest, a db-url, is well under this). */
const MAX_CARRY = 1_024;

/**
 * Watches a proxied request's body, as it streams out, for a honeytoken's
 * value: each chunk is cut at its last separator and the rest carried to
 * the next, so a value split between chunks is still seen whole; only
 * tokens of a decoy value's length are hashed (see HoneytokenWatch). The
 * body is read as latin1 — decoy values are ASCII, and a multi-byte
 * character must not shift what follows. It only observes: the body goes
 * out unchanged. Created only when honeytokens exist, so a deployment
 * without them pays nothing.
 */
export class ProxyBodyWatch {
  readonly #watch: HoneytokenWatch;
  #carry = '';
  #found: string | undefined;

  constructor(watch: HoneytokenWatch) {
    this.#watch = watch;
  }

  /** The audit-key HMAC of the first decoy value seen, if any. */
  get found(): string | undefined {
    return this.#found;
  }

  write(chunk: Buffer): void {
    if (this.#found) return;
    const text = this.#carry + chunk.toString('latin1');
    // Back to the last separator, looking at most MAX_CARRY characters back:
    // a longer run cannot be a decoy value and is examined as it is.
    const floor = Math.max(0, text.length - MAX_CARRY);
    let cut = text.length;
    while (cut > floor && !SEPARATOR.test(text[cut - 1] as string)) cut--;
    if (cut === floor && floor > 0 && !SEPARATOR.test(text[floor - 1] as string)) cut = text.length;
    this.#examine(text.slice(0, cut));
    this.#carry = text.slice(cut);
  }

  end(): void {
    this.#examine(this.#carry);
    this.#carry = '';
  }

  #examine(text: string): void {
    if (text === '' || this.#found) return;
    this.#found = this.#watch.findValue([text]);
  }
}
