import type { EntryStore, ListOptions, PutOptions, StoredEntry } from '../ports/index.js';

/** Adapters cap `limit` at this many keys; the in-memory store does the same. */
const MAX_LIMIT = 10_000;

interface Row {
  readonly value: Uint8Array;
  readonly expiresAt: number | null;
}

/**
 * An in-memory {@link EntryStore} for tests, with the port's semantics: keys
 * sort by their UTF-8 bytes (not by UTF-16 code units, which differ for
 * characters beyond the BMP), `list`/`scan` are prefix range scans with
 * keyset pagination, `putIfAbsent` is atomic, and values are copied in and
 * out so a caller mutating a buffer cannot change what is stored.
 *
 * Every method yields to the event loop once before acting, so concurrent
 * callers interleave as they would against a real database.
 */
export class MemoryEntryStore implements EntryStore {
  readonly #namespaces = new Map<string, Map<string, Row>>();

  async get(namespace: string, key: string): Promise<StoredEntry | undefined> {
    await tick();
    const row = this.#ns(namespace).get(checkKey(key));
    return row === undefined ? undefined : entry(key, row);
  }

  async put(namespace: string, key: string, value: Uint8Array, options?: PutOptions): Promise<void> {
    await tick();
    this.#ns(namespace).set(checkKey(key), row(value, options));
  }

  async putIfAbsent(namespace: string, key: string, value: Uint8Array, options?: PutOptions): Promise<boolean> {
    await tick();
    // Check and insert with no await between them: atomic on one event loop.
    const ns = this.#ns(namespace);
    if (ns.has(checkKey(key))) return false;
    ns.set(key, row(value, options));
    return true;
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    await tick();
    return this.#ns(namespace).delete(checkKey(key));
  }

  async list(namespace: string, prefix: string, options?: ListOptions): Promise<string[]> {
    await tick();
    return this.#range(namespace, prefix, options).map(([key]) => key);
  }

  async scan(namespace: string, prefix: string, options?: ListOptions): Promise<StoredEntry[]> {
    await tick();
    return this.#range(namespace, prefix, options).map(([key, r]) => entry(key, r));
  }

  async listExpired(namespace: string, now: number, limit: number): Promise<string[]> {
    await tick();
    const expired: [string, number][] = [];
    for (const [key, r] of this.#ns(namespace)) {
      if (r.expiresAt !== null && r.expiresAt <= now) expired.push([key, r.expiresAt]);
    }
    expired.sort((a, b) => a[1] - b[1] || compareKeys(a[0], b[0]));
    return expired.slice(0, clampLimit(limit)).map(([key]) => key);
  }

  /** Number of entries in a namespace (a test convenience, not part of the port). */
  size(namespace: string): number {
    return this.#ns(namespace).size;
  }

  #range(namespace: string, prefix: string, options?: ListOptions): [string, Row][] {
    const after = options?.after;
    const rows = [...this.#ns(namespace)].filter(
      ([key]) => key.startsWith(prefix) && (after === undefined || compareKeys(key, after) > 0),
    );
    rows.sort((a, b) => compareKeys(a[0], b[0]));
    return rows.slice(0, clampLimit(options?.limit));
  }

  #ns(namespace: string): Map<string, Row> {
    let ns = this.#namespaces.get(namespace);
    if (ns === undefined) {
      ns = new Map();
      this.#namespaces.set(namespace, ns);
    }
    return ns;
  }
}

/** Byte order of the UTF-8 encodings, as the adapters' binary collation sorts. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function checkKey(key: string): string {
  if (key.includes('\0')) throw new Error('entry keys must not contain NUL');
  return key;
}

function clampLimit(limit: number | undefined): number {
  return limit === undefined ? MAX_LIMIT : Math.max(0, Math.min(limit, MAX_LIMIT));
}

function row(value: Uint8Array, options?: PutOptions): Row {
  return { value: Uint8Array.from(value), expiresAt: options?.expiresAt ?? null };
}

function entry(key: string, r: Row): StoredEntry {
  return { key, value: Uint8Array.from(r.value), expiresAt: r.expiresAt };
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
