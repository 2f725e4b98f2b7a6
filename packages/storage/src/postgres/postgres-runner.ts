import type { QueryConfig, QueryResult, QueryResultRow } from 'pg';

/** A pool or one checked-out client. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(config: QueryConfig): Promise<QueryResult<R>>;
}

/** How a store reaches the database: outside (the pool) or inside a transaction (its client). */
export interface PostgresContext {
  readonly inTransaction: boolean;
  /** Runs `op` with the right connection, wrapping driver errors. */
  run<T>(op: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `op`'s reads in one snapshot: outside a transaction, a read-only
   * REPEATABLE READ transaction of its own; inside one, its client (READ
   * COMMITTED: each statement sees what committed before it).
   */
  snapshot<T>(op: (q: Queryable) => Promise<T>): Promise<T>;
}
