import type { Database, Statement } from 'better-sqlite3';

/**
 * Prepared statements, prepared once per connection on first use (lazily, so
 * nothing is prepared against tables `migrate()` has not created yet).
 */
export class SqliteStatements {
  readonly #cache = new Map<string, Statement>();

  constructor(readonly db: Database) {}

  /** The cached statement for `sql`. */
  get(sql: string): Statement {
    let stmt = this.#cache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.#cache.set(sql, stmt);
    }
    return stmt;
  }

  /** Like {@link get}, in pluck mode (rows are the first column's value). */
  pluck(sql: string): Statement {
    const key = `pluck:${sql}`;
    let stmt = this.#cache.get(key);
    if (!stmt) {
      stmt = this.db.prepare(sql).pluck();
      this.#cache.set(key, stmt);
    }
    return stmt;
  }
}

/** Runs a synchronous operation with the right locking and error wrapping. */
export type SqliteRunner = <T>(op: () => T) => Promise<T>;
