import type { EntryStore, ListOptions, PutOptions, StoredEntry } from '@custos/core';
import { asBuffer, ownedBytes } from '../shared/as-buffer.js';
import { type KeyRange, keyRange } from '../shared/key-range.js';
import { assertExpiry, assertKey } from '../shared/key-validation.js';
import { clampLimit } from '../shared/list-limit.js';
import { bind, type PostgresQueries, rangeQuery } from './postgres-queries.js';
import type { PostgresContext } from './postgres-runner.js';

interface EntryRow {
  key: string;
  value: Buffer;
  expires_at: string | null;
}

// bigint arrives as a string (it may exceed 2^53); expiries are epoch ms, well within.
const toExpiry = (v: string | null): number | null => (v === null ? null : Number(v));

/** {@link EntryStore} over a pool or one transaction's client. */
export class PostgresEntryStore implements EntryStore {
  constructor(
    private readonly q: PostgresQueries,
    private readonly ctx: PostgresContext,
  ) {}

  get(namespace: string, key: string): Promise<StoredEntry | undefined> {
    return this.ctx.run(async (db) => {
      assertKey(namespace);
      assertKey(key);
      const query = this.ctx.inTransaction ? this.q.getForUpdate : this.q.get;
      const { rows } = await db.query<Omit<EntryRow, 'key'>>(bind(query, [namespace, key]));
      const row = rows[0];
      return row && { key, value: ownedBytes(row.value), expiresAt: toExpiry(row.expires_at) };
    });
  }

  put(namespace: string, key: string, value: Uint8Array, options?: PutOptions): Promise<void> {
    return this.ctx.run(async (db) => {
      assertKey(namespace);
      assertKey(key);
      assertExpiry(options?.expiresAt);
      await db.query(bind(this.q.put, [namespace, key, asBuffer(value), options?.expiresAt ?? null]));
    });
  }

  putIfAbsent(namespace: string, key: string, value: Uint8Array, options?: PutOptions): Promise<boolean> {
    return this.ctx.run(async (db) => {
      assertKey(namespace);
      assertKey(key);
      assertExpiry(options?.expiresAt);
      const r = await db.query(bind(this.q.putIfAbsent, [namespace, key, asBuffer(value), options?.expiresAt ?? null]));
      return r.rowCount === 1;
    });
  }

  delete(namespace: string, key: string): Promise<boolean> {
    return this.ctx.run(async (db) => {
      assertKey(namespace);
      assertKey(key);
      const r = await db.query(bind(this.q.delete, [namespace, key]));
      return (r.rowCount ?? 0) > 0;
    });
  }

  list(namespace: string, prefix: string, options?: ListOptions): Promise<string[]> {
    return this.ctx.run(async (db) => {
      const range = this.range(namespace, prefix, options);
      const { rows } = await db.query<{ key: string }>(
        rangeQuery(this.q.list, namespace, range, clampLimit(options?.limit)),
      );
      return rows.map((r) => r.key);
    });
  }

  scan(namespace: string, prefix: string, options?: ListOptions): Promise<StoredEntry[]> {
    return this.ctx.run(async (db) => {
      const range = this.range(namespace, prefix, options);
      const { rows } = await db.query<EntryRow>(rangeQuery(this.q.scan, namespace, range, clampLimit(options?.limit)));
      return rows.map((r) => ({ key: r.key, value: ownedBytes(r.value), expiresAt: toExpiry(r.expires_at) }));
    });
  }

  listExpired(namespace: string, now: number, limit: number): Promise<string[]> {
    return this.ctx.run(async (db) => {
      assertKey(namespace);
      const { rows } = await db.query<{ key: string }>(
        bind(this.q.listExpired, [namespace, Math.floor(now), clampLimit(limit)]),
      );
      return rows.map((r) => r.key);
    });
  }

  private range(namespace: string, prefix: string, options: ListOptions | undefined): KeyRange {
    assertKey(namespace);
    assertKey(prefix);
    if (options?.after !== undefined) assertKey(options.after);
    return keyRange(prefix, options?.after);
  }
}
