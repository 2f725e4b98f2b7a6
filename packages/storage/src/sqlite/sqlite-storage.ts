import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, openSync } from 'node:fs';
import { type AuditStore, CustosError, type EntryStore, type Storage, type StorageTx } from '@custos/core';
import Database from 'better-sqlite3';
import { wrapStorageError } from '../shared/storage-error-wrap.js';
import { TxLock } from '../shared/tx-lock.js';
import { SqliteAuditStore } from './sqlite-audit-store.js';
import { SqliteEntryCache } from './sqlite-entry-cache.js';
import { SqliteEntryStore } from './sqlite-entry-store.js';
import { migrateSqlite } from './sqlite-migrate.js';
import { type SqliteRunner, SqliteStatements } from './sqlite-statements.js';

/** Options for {@link SqliteStorage}. */
export interface SqliteStorageOptions {
  /** A file path, or `:memory:` for a private in-memory database. */
  readonly path: string;
  /**
   * `full` (default) fsyncs the WAL on every commit; `normal` does not.
   *
   * With WAL, `normal` already keeps every acknowledged commit across a crash
   * or SIGKILL of the *process* (the commit is in the WAL file, in the OS page
   * cache), but can lose the last commits on an OS crash or power loss. custos
   * acknowledges secret writes and audit events as durable, so the default is
   * `full`. Measured on the 2-core development VM (ext4 on virtio, other jobs
   * running): a single-row commit takes about 20–170 µs with `normal` and
   * 0.2–2.5 ms with `full` (one WAL fsync; the high end under fsync load from
   * other processes); a 1,000-put transaction 4–8 ms vs 33–48 ms. Batch audit
   * events into one transaction (group commit) to amortise the fsync.
   */
  readonly synchronous?: 'full' | 'normal';
  /** How long to wait for another process's write lock, in ms (default 5,000). */
  readonly busyTimeoutMs?: number;
  /**
   * Hold the file for this connection alone (SQLite's EXCLUSIVE locking mode,
   * taken by `migrate()`): another process opening it gets "database is
   * locked". The server runs this way. Being the only writer is what lets
   * the connection cache `get` answers coherently (see
   * {@link SqliteEntryCache}); it also spares every read the shared-memory
   * locking of WAL mode. Default false: a plain library connection may share
   * its file.
   */
  readonly exclusive?: boolean;
  /** Bytes of entries the cache of an exclusive connection may hold (default 32 MiB; 0 turns it off). */
  readonly cacheBytes?: number;
  /**
   * Turn a self-deadlock (the outer store, or a nested transaction, used
   * inside a transaction's `fn`) into an immediate error instead of a hang
   * (default true). It needs an AsyncLocalStorage, which on Node.js before 24
   * puts an async_hooks callback on *every promise in the process*: measured
   * at about 0.1 µs per promise, some 10% of an audited secret read. The
   * server turns it off; the test suites run every transaction with it on.
   */
  readonly detectTransactionMisuse?: boolean;
  /**
   * How many seqs an audit dictionary entry may outlive its last use before
   * an archive run deletes it (default 100,000; see AUDIT_DICTIONARY_SPAN in
   * shared/audit-compaction.ts). Smaller collects sooner and records uses
   * more often.
   */
  readonly auditDictionarySpan?: number;
}

/** Default size of an exclusive connection's entry cache. */
const DEFAULT_SQLITE_CACHE_BYTES = 32 * 1024 * 1024;

// Which storage's transaction the current async context is inside, to turn a
// self-deadlock (using the outer store, or a nested transaction, inside `fn`)
// into an immediate error.
const insideTransaction = new AsyncLocalStorage<SqliteStorage>();

function settle<T>(op: () => T): Promise<T> {
  try {
    return Promise.resolve(op());
  } catch (e) {
    return Promise.reject(wrapStorageError(e));
  }
}

class SqliteTx implements StorageTx {
  active = true;
  readonly entries: EntryStore;
  readonly audit: AuditStore;

  constructor(stmts: SqliteStatements, cache: SqliteEntryCache | undefined, span: number | undefined) {
    // Inside the transaction the lock is already ours: operations run directly.
    const run: SqliteRunner = (op) =>
      this.active ? settle(op) : Promise.reject(new Error('The transaction has already finished.'));
    // Its writes are forgotten by the cache; its reads never go through it.
    this.entries = new SqliteEntryStore(stmts, run, cache && { cache, readThrough: () => false });
    this.audit = new SqliteAuditStore(stmts, run, span);
  }
}

/**
 * The embedded storage adapter: one better-sqlite3 connection in WAL mode.
 *
 * better-sqlite3 is synchronous but a transaction's `fn` is async, so other
 * callers could otherwise slip their statements into an open transaction. A
 * FIFO lock serialises transactions; operations outside a transaction wait
 * only while one is open, and otherwise run at once with no extra hop.
 *
 * @example
 * const storage = new SqliteStorage({ path: '.custos/custos.db' });
 * await storage.migrate();
 */
export class SqliteStorage implements Storage {
  readonly dialect = 'sqlite' as const;
  readonly entries: EntryStore;
  readonly audit: AuditStore;
  readonly #db: Database.Database;
  readonly #stmts: SqliteStatements;
  readonly #lock = new TxLock();
  readonly #cache: SqliteEntryCache | undefined;
  readonly #detectMisuse: boolean;
  readonly #auditDictionarySpan: number | undefined;

  constructor(options: SqliteStorageOptions) {
    let db: Database.Database | undefined;
    try {
      if (options.path !== ':memory:' && options.path !== '') {
        // Create the file 0600 before SQLite does: entry keys and audit events
        // are plain metadata. SQLite gives the -wal and -shm files the same mode.
        closeSync(openSync(options.path, 'a', 0o600));
      }
      db = new Database(options.path, { timeout: Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000)) });
      // Before WAL is first opened: an exclusive connection then keeps the WAL index in its own memory.
      if (options.exclusive) db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      db.pragma('foreign_keys = ON');
      this.#db = db;
    } catch (e) {
      // Opened but refused (the file is held, a pragma failed): release it.
      if (db?.open) db.close();
      if ((e as { code?: unknown })?.code === 'SQLITE_BUSY') {
        // Another process holds the file exclusively (a running custos server).
        throw new CustosError('CUSTOS_ERR_STORAGE', 'The database file is in use by another process.', { cause: e });
      }
      throw wrapStorageError(e);
    }
    this.#detectMisuse = options.detectTransactionMisuse ?? true;
    this.#auditDictionarySpan = options.auditDictionarySpan;
    this.#stmts = new SqliteStatements(this.#db);
    const run: SqliteRunner = (op) => this.#runOutside(op);
    const cacheBytes = options.cacheBytes ?? DEFAULT_SQLITE_CACHE_BYTES;
    // Only a connection that is the file's sole writer may cache: another
    // process's write would otherwise leave a stale answer (a revoked token
    // still cached as live).
    const cache = options.exclusive && cacheBytes > 0 ? new SqliteEntryCache(cacheBytes) : undefined;
    this.#cache = cache;
    this.entries = new SqliteEntryStore(
      this.#stmts,
      run,
      // Not while a transaction holds the lock, nor once closed (then the database answers: with an error).
      cache && { cache, readThrough: () => !this.#lock.held && this.#db.open },
    );
    this.audit = new SqliteAuditStore(this.#stmts, run, options.auditDictionarySpan);
  }

  async transaction<T>(fn: (tx: StorageTx) => Promise<T>): Promise<T> {
    if (this.#detectMisuse && insideTransaction.getStore() === this) {
      throw new Error('Nested transaction: use the tx given to fn.');
    }
    await this.#lock.acquire();
    try {
      const tx = new SqliteTx(this.#stmts, this.#cache, this.#auditDictionarySpan);
      try {
        this.#stmts.get('BEGIN IMMEDIATE').run();
      } catch (e) {
        throw wrapStorageError(e);
      }
      let result: T;
      try {
        result = await (this.#detectMisuse ? insideTransaction.run(this, () => fn(tx)) : fn(tx));
      } catch (e) {
        tx.active = false;
        this.#rollback();
        throw e;
      }
      tx.active = false;
      try {
        this.#stmts.get('COMMIT').run();
      } catch (e) {
        this.#rollback();
        throw wrapStorageError(e);
      }
      return result;
    } finally {
      this.#lock.release();
    }
  }

  migrate(): Promise<void> {
    return this.#runOutside(() => {
      this.#cache?.clear();
      migrateSqlite(this.#db);
    });
  }

  async close(): Promise<void> {
    // Wait for an open transaction to finish rather than cutting it off.
    await this.#lock.acquire();
    try {
      if (this.#db.open) this.#db.close();
      this.#cache?.clear();
    } finally {
      this.#lock.release();
    }
  }

  /** The connection's effective settings (for status output and tests). */
  settings(): {
    journalMode: string;
    synchronous: number;
    busyTimeoutMs: number;
    foreignKeys: boolean;
    lockingMode: string;
  } {
    const p = (name: string): unknown => this.#db.pragma(name, { simple: true });
    return {
      journalMode: String(p('journal_mode')),
      synchronous: Number(p('synchronous')),
      busyTimeoutMs: Number(p('busy_timeout')),
      foreignKeys: Number(p('foreign_keys')) === 1,
      lockingMode: String(p('locking_mode')),
    };
  }

  #runOutside<T>(op: () => T): Promise<T> {
    if (!this.#lock.held) return settle(op);
    if (this.#detectMisuse && insideTransaction.getStore() === this) {
      // Waiting here would wait for our own transaction: a deadlock.
      return Promise.reject(new Error('Storage used outside its transaction inside fn: use the tx given to fn.'));
    }
    return this.#lock.acquire().then(() => {
      try {
        return settle(op);
      } finally {
        this.#lock.release();
      }
    });
  }

  #rollback(): void {
    try {
      if (this.#db.inTransaction) this.#stmts.get('ROLLBACK').run();
    } catch {
      // The transaction is already gone (SQLite rolls back on some errors itself).
    }
  }
}
