/**
 * A small TTL cache (per node, in memory) for what a source answered:
 * version listings and values. Bounded in entries, so a caller cannot grow
 * it without limit by reading many names; the oldest entry goes first.
 * Values are JavaScript strings, which cannot be zeroed: they stay in memory
 * until the entry expires or is dropped and the collector reclaims them, as
 * every secret custos serves does while a response is built.
 */
export class SourceCache<T> {
  readonly #entries = new Map<string, { value: T; expires: number }>();
  readonly #max: number;

  constructor(max = 1_000) {
    this.#max = max;
  }

  get(key: string, now = Date.now()): T | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: T, ttlMs: number, now = Date.now()): void {
    if (ttlMs <= 0) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, { value, expires: now + ttlMs });
  }

  /** Drops every entry whose key starts with `prefix` (a source's refresh). */
  dropPrefix(prefix: string): number {
    let dropped = 0;
    for (const key of [...this.#entries.keys()]) {
      if (key.startsWith(prefix)) {
        this.#entries.delete(key);
        dropped += 1;
      }
    }
    return dropped;
  }
}
