import type { StoredEntry } from '@custos/core';

/** A cached answer to `get`: the row as stored (`value` undefined when absent), and whether it was used since the last sweep. */
interface Cached {
  readonly value: Uint8Array | undefined;
  readonly expiresAt: number | null;
  used: boolean;
}

/** Entries larger than this are not cached: they are rare and would crowd out the hot small ones. */
const MAX_CACHED_VALUE_BYTES = 64 * 1024;
/** What an entry costs besides its value (key strings, map slot, object): a rough, safe estimate. */
const ENTRY_OVERHEAD_BYTES = 160;

/**
 * A cache of `get` answers for one SQLite connection that is the only
 * writer of its file (the connection holds SQLite's EXCLUSIVE lock, so no
 * other process can change the file under it). Like Vault's physical cache it
 * holds the rows *as stored*: barrier ciphertext, never decrypted values.
 *
 * Coherence is exact because every write of this connection goes through
 * {@link SqliteStorage}, which calls {@link forget} for each key it writes, in
 * the same synchronous step as the write, and fills the cache only from reads
 * made while no transaction is open (so never with uncommitted rows). Absent
 * keys are cached too: the hot path asks
 * for markers that are almost never there (a task's end marker, on every
 * request made with a task token).
 *
 * Every hit returns a fresh copy of the bytes, as a read from the database
 * does, so a caller that zeroes or changes a value cannot change the cache.
 */
export class SqliteEntryCache {
  readonly #maxBytes: number;
  readonly #rows = new Map<string, Cached>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Rows held and their estimated bytes (status output, tests). */
  get size(): { rows: number; bytes: number } {
    return { rows: this.#rows.size, bytes: this.#bytes };
  }

  /** `undefined` when not cached; `null` when cached as absent. */
  get(namespace: string, key: string): StoredEntry | null | undefined {
    const cached = this.#rows.get(cacheKey(namespace, key));
    if (cached === undefined) return undefined;
    // A hit only sets a bit (CLOCK, an LRU approximation): no map update on the hot path.
    cached.used = true;
    if (cached.value === undefined) return null;
    return { key, value: new Uint8Array(cached.value), expiresAt: cached.expiresAt };
  }

  /** Remembers what the database answered for (namespace, key). */
  set(namespace: string, key: string, entry: StoredEntry | undefined): void {
    const id = cacheKey(namespace, key);
    this.forgetId(id);
    if (this.#maxBytes <= 0) return;
    if (entry && entry.value.byteLength > MAX_CACHED_VALUE_BYTES) return;
    const cached: Cached = entry
      ? { value: new Uint8Array(entry.value), expiresAt: entry.expiresAt, used: false }
      : { value: undefined, expiresAt: null, used: false };
    this.#rows.set(id, cached);
    this.#bytes += cost(id, cached);
    // Sweep from the oldest insertion: a row used since the last sweep gets a
    // second chance (moved to the end, bit cleared); the first unused one goes.
    let budget = this.#rows.size * 2;
    for (const [oldest, row] of this.#rows) {
      if (this.#bytes <= this.#maxBytes || budget-- <= 0) break;
      this.#rows.delete(oldest);
      if (row.used && oldest !== id) {
        row.used = false;
        this.#rows.set(oldest, row);
      } else {
        this.#bytes -= cost(oldest, row);
      }
    }
  }

  /** Drops (namespace, key): it was written, or may have been. */
  forget(namespace: string, key: string): void {
    this.forgetId(cacheKey(namespace, key));
  }

  /** Drops everything (after a migration or any write the cache cannot follow key by key). */
  clear(): void {
    this.#rows.clear();
    this.#bytes = 0;
  }

  private forgetId(id: string): void {
    const cached = this.#rows.get(id);
    if (cached === undefined) return;
    this.#rows.delete(id);
    this.#bytes -= cost(id, cached);
  }
}

// Namespaces and keys never contain NUL (key validation refuses it), so the join is unambiguous.
const cacheKey = (namespace: string, key: string) => `${namespace}\0${key}`;
const cost = (id: string, row: Cached) => ENTRY_OVERHEAD_BYTES + id.length * 2 + (row.value?.byteLength ?? 0);
