import type { Storage } from '@custos/core';
import { ValidationError } from '@custos/core';
import { PostgresStorage, type PostgresStorageOptions } from './postgres/postgres-storage.js';
import { SqliteStorage, type SqliteStorageOptions } from './sqlite/sqlite-storage.js';

/** Adapter-specific options for {@link createStorage}; the URL supplies the rest. */
export interface CreateStorageOptions {
  readonly sqlite?: Omit<SqliteStorageOptions, 'path'>;
  readonly postgres?: Omit<PostgresStorageOptions, 'connectionString'>;
}

/**
 * Opens the storage a URL names. The schema is not created: call
 * `migrate()` once before use (it is idempotent, so on every start is fine).
 *
 * - `sqlite:<path>` (relative or absolute), `sqlite:///abs/path`, or
 *   `sqlite::memory:` for a private in-memory database;
 * - `postgres://…` or `postgresql://…`.
 *
 * Throws {@link ValidationError} for any other scheme; the URL itself (which
 * may carry a password) never appears in the message.
 *
 * @example
 * const storage = createStorage('sqlite:.custos/custos.db');
 * await storage.migrate();
 * await storage.entries.put('sys', 'init', new Uint8Array([1]));
 */
export function createStorage(url: string, options: CreateStorageOptions = {}): Storage {
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') throw new ValidationError('The sqlite: storage URL needs a path or :memory:.');
    return new SqliteStorage({ ...options.sqlite, path });
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return new PostgresStorage({ ...options.postgres, connectionString: url });
  }
  throw new ValidationError('The storage URL must start with sqlite:, postgres:// or postgresql://.');
}
