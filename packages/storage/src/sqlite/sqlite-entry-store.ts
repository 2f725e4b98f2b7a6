import type { EntryStore, ListOptions, PutOptions, StoredEntry } from '@custos/core';
import { asBuffer, ownedBytes } from '../shared/as-buffer.js';
import { type KeyRange, keyRange } from '../shared/key-range.js';
import { assertExpiry, assertKey } from '../shared/key-validation.js';
import { clampLimit } from '../shared/list-limit.js';
import type { SqliteEntryCache } from './sqlite-entry-cache.js';
import type { SqliteRunner, SqliteStatements } from './sqlite-statements.js';

const GET = 'SELECT value, expires_at FROM entries WHERE namespace = ? AND key = ?';
const PUT = `INSERT INTO entries (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)
  ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`;
const PUT_IF_ABSENT =
  'INSERT INTO entries (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, key) DO NOTHING';
const DELETE = 'DELETE FROM entries WHERE namespace = ? AND key = ?';
const LIST_EXPIRED = `SELECT key FROM entries WHERE namespace = ? AND expires_at IS NOT NULL AND expires_at <= ?
  ORDER BY expires_at, key LIMIT ?`;

/** The range query for `list`/`scan`: one of four shapes, each a cached statement. */
function rangeSql(columns: string, range: KeyRange): string {
  const lower = range.lowerInclusive ? '>=' : '>';
  const upper = range.upper === undefined ? '' : ' AND key < ?';
  return `SELECT ${columns} FROM entries WHERE namespace = ? AND key ${lower} ?${upper} ORDER BY key LIMIT ?`;
}

function rangeParams(namespace: string, range: KeyRange, limit: number): unknown[] {
  return range.upper === undefined ? [namespace, range.lower, limit] : [namespace, range.lower, range.upper, limit];
}

interface EntryRow {
  key: string;
  value: Buffer;
  expires_at: number | null;
}

/**
 * How a store uses the connection's entry cache. Every store forgets each key
 * it writes, in the same synchronous step as the write. `readThrough` says
 * when a read may be answered from the cache and fill it: never inside a
 * transaction (it would see, and could cache, uncommitted rows), and outside
 * one only while no transaction holds the lock (a read then waits for it and
 * sees its writes, as without a cache). A key a transaction forgot can only
 * be cached again by such a read, so after the commit or rollback.
 */
export interface SqliteEntryCacheLink {
  readonly cache: SqliteEntryCache;
  readonly readThrough: () => boolean;
}

/** {@link EntryStore} over one SQLite connection. */
export class SqliteEntryStore implements EntryStore {
  constructor(
    private readonly stmts: SqliteStatements,
    private readonly run: SqliteRunner,
    private readonly cache?: SqliteEntryCacheLink,
  ) {}

  get(namespace: string, key: string): Promise<StoredEntry | undefined> {
    const cache = this.cache?.readThrough() ? this.cache.cache : undefined;
    const hit = cache?.get(namespace, key);
    if (hit !== undefined) return Promise.resolve(hit ?? undefined);
    return this.run(() => {
      assertKey(namespace);
      assertKey(key);
      const row = this.stmts.get(GET).get(namespace, key) as Omit<EntryRow, 'key'> | undefined;
      const entry = row && { key, value: ownedBytes(row.value), expiresAt: row.expires_at };
      // Filled in the same synchronous step as the read: nothing can write in between.
      cache?.set(namespace, key, entry);
      return entry;
    });
  }

  put(namespace: string, key: string, value: Uint8Array, options?: PutOptions): Promise<void> {
    return this.run(() => {
      assertKey(namespace);
      assertKey(key);
      assertExpiry(options?.expiresAt);
      this.stmts.get(PUT).run(namespace, key, asBuffer(value), options?.expiresAt ?? null);
      this.cache?.cache.forget(namespace, key);
    });
  }

  putIfAbsent(namespace: string, key: string, value: Uint8Array, options?: PutOptions): Promise<boolean> {
    return this.run(() => {
      assertKey(namespace);
      assertKey(key);
      assertExpiry(options?.expiresAt);
      const added =
        this.stmts.get(PUT_IF_ABSENT).run(namespace, key, asBuffer(value), options?.expiresAt ?? null).changes === 1;
      this.cache?.cache.forget(namespace, key);
      return added;
    });
  }

  delete(namespace: string, key: string): Promise<boolean> {
    return this.run(() => {
      assertKey(namespace);
      assertKey(key);
      const deleted = this.stmts.get(DELETE).run(namespace, key).changes > 0;
      this.cache?.cache.forget(namespace, key);
      return deleted;
    });
  }

  list(namespace: string, prefix: string, options?: ListOptions): Promise<string[]> {
    return this.run(() => {
      const range = this.range(namespace, prefix, options);
      return this.stmts
        .pluck(rangeSql('key', range))
        .all(...rangeParams(namespace, range, clampLimit(options?.limit))) as string[];
    });
  }

  scan(namespace: string, prefix: string, options?: ListOptions): Promise<StoredEntry[]> {
    return this.run(() => {
      const range = this.range(namespace, prefix, options);
      const rows = this.stmts
        .get(rangeSql('key, value, expires_at', range))
        .all(...rangeParams(namespace, range, clampLimit(options?.limit))) as EntryRow[];
      return rows.map((r) => ({ key: r.key, value: ownedBytes(r.value), expiresAt: r.expires_at }));
    });
  }

  listExpired(namespace: string, now: number, limit: number): Promise<string[]> {
    return this.run(() => {
      assertKey(namespace);
      return this.stmts.pluck(LIST_EXPIRED).all(namespace, Math.floor(now), clampLimit(limit)) as string[];
    });
  }

  private range(namespace: string, prefix: string, options: ListOptions | undefined): KeyRange {
    assertKey(namespace);
    assertKey(prefix);
    if (options?.after !== undefined) assertKey(options.after);
    return keyRange(prefix, options?.after);
  }
}
