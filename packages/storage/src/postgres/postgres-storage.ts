import type { AuditStore, EntryStore, Storage, StorageTx } from '@custos/core';
import pg from 'pg';
import { wrapStorageError } from '../shared/storage-error-wrap.js';
import { PostgresAuditStore } from './postgres-audit-store.js';
import { PostgresEntryStore } from './postgres-entry-store.js';
import { migratePostgres } from './postgres-migrate.js';
import { type PostgresQueries, postgresQueries, quoteSchema } from './postgres-queries.js';
import type { PostgresContext, Queryable } from './postgres-runner.js';

/** Options for {@link PostgresStorage}. */
export interface PostgresStorageOptions {
  /** `postgres://user:pass@host:port/db` (any libpq-style URL node-postgres accepts). */
  readonly connectionString: string;
  /** The PostgreSQL schema holding custos's tables (default `custos`); `[a-z_][a-z0-9_]*`. */
  readonly schema?: string;
  /** Pool size (default 10). */
  readonly maxConnections?: number;
  /**
   * How long to wait for a connection, new or from the busy pool, in ms
   * (default 10,000). Past it the operation fails with StorageError rather
   * than hanging on an unreachable server.
   */
  readonly connectTimeoutMs?: number;
  /**
   * How many seqs an audit dictionary entry may outlive its last use before
   * an archive run deletes it (default 100,000; see AUDIT_DICTIONARY_SPAN in
   * shared/audit-compaction.ts). Smaller collects sooner and records uses
   * more often.
   */
  readonly auditDictionarySpan?: number;
}

const ignore = (): void => undefined;

async function guarded<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw wrapStorageError(e);
  }
}

class PostgresTx implements StorageTx, PostgresContext {
  readonly inTransaction = true;
  active = true;
  readonly entries: EntryStore;
  readonly audit: AuditStore;

  constructor(
    private readonly client: pg.PoolClient,
    queries: PostgresQueries,
    auditDictionarySpan: number | undefined,
  ) {
    this.entries = new PostgresEntryStore(queries, this);
    this.audit = new PostgresAuditStore(queries, this, auditDictionarySpan);
  }

  run<T>(op: (q: Queryable) => Promise<T>): Promise<T> {
    // After commit the client is back in the pool, maybe inside someone else's
    // transaction: a late call must never reach it.
    if (!this.active) return Promise.reject(new Error('The transaction has already finished.'));
    return guarded(() => op(this.client));
  }

  snapshot<T>(op: (q: Queryable) => Promise<T>): Promise<T> {
    return this.run(op);
  }
}

/**
 * The PostgreSQL adapter, for HA deployments: a `pg` pool, tables in their own
 * schema. Transactions run on one pooled client at READ COMMITTED; a `get`
 * inside a transaction locks the row (`FOR UPDATE`), so a read-modify-write in
 * one transaction does not lose concurrent updates.
 *
 * @example
 * const storage = new PostgresStorage({ connectionString: process.env.CUSTOS_PG_URL! });
 * await storage.migrate();
 */
export class PostgresStorage implements Storage {
  readonly dialect = 'postgres' as const;
  readonly entries: EntryStore;
  readonly audit: AuditStore;
  /** The schema holding the tables. */
  readonly schema: string;
  readonly #pool: pg.Pool;
  readonly #queries: PostgresQueries;
  readonly #auditDictionarySpan: number | undefined;
  #closed = false;

  constructor(options: PostgresStorageOptions) {
    this.schema = options.schema ?? 'custos';
    quoteSchema(this.schema);
    this.#queries = postgresQueries(this.schema);
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      application_name: 'custos',
    });
    // An idle client whose server went away emits 'error' on the pool; without
    // a listener that would crash the process. The next query fails and is
    // reported as a StorageError instead.
    this.#pool.on('error', ignore);
    // Outside a transaction every operation takes any pooled connection.
    const outside: PostgresContext = {
      inTransaction: false,
      run: (op) => guarded(() => op(this.#pool)),
      snapshot: (op) => this.#snapshot(op),
    };
    this.#auditDictionarySpan = options.auditDictionarySpan;
    this.entries = new PostgresEntryStore(this.#queries, outside);
    this.audit = new PostgresAuditStore(this.#queries, outside, this.#auditDictionarySpan);
  }

  /** `op`'s reads in one read-only REPEATABLE READ transaction on one pooled client. */
  async #snapshot<T>(op: (q: Queryable) => Promise<T>): Promise<T> {
    const client = await guarded(() => this.#pool.connect());
    client.on('error', ignore);
    // A client whose BEGIN, COMMIT or ROLLBACK failed is destroyed rather than reused.
    let broken: Error | undefined;
    try {
      return await guarded(async () => {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const result = await op(client);
        await client.query('COMMIT');
        return result;
      });
    } catch (e) {
      await client.query('ROLLBACK').catch((re: Error) => {
        broken = re;
      });
      throw e;
    } finally {
      client.off('error', ignore);
      client.release(broken);
    }
  }

  async transaction<T>(fn: (tx: StorageTx) => Promise<T>): Promise<T> {
    const client = await guarded(() => this.#pool.connect());
    client.on('error', ignore);
    // A client whose ROLLBACK or COMMIT failed is destroyed rather than reused.
    let broken: Error | undefined;
    try {
      await guarded(() => client.query('BEGIN'));
      const tx = new PostgresTx(client, this.#queries, this.#auditDictionarySpan);
      let result: T;
      try {
        result = await fn(tx);
      } catch (e) {
        tx.active = false;
        await client.query('ROLLBACK').catch((re: Error) => {
          broken = re;
        });
        throw e;
      }
      tx.active = false;
      const commit = await client.query('COMMIT').catch((ce: Error) => {
        broken = ce;
        throw wrapStorageError(ce);
      });
      // COMMIT of a transaction that a failed statement aborted answers
      // ROLLBACK instead of failing (fn swallowed an error): nothing was written.
      if (commit.command !== 'COMMIT') throw wrapStorageError(new Error('The transaction was rolled back.'));
      return result;
    } finally {
      client.off('error', ignore);
      client.release(broken);
    }
  }

  async migrate(): Promise<void> {
    const client = await guarded(() => this.#pool.connect());
    client.on('error', ignore);
    try {
      await guarded(() => migratePostgres(client, this.schema));
    } finally {
      client.off('error', ignore);
      client.release();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await guarded(() => this.#pool.end());
  }
}
