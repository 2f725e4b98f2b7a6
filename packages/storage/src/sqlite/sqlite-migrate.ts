import type { Database } from 'better-sqlite3';
import { MIGRATIONS } from '../migrations/migration-list.js';
import { NewerSchemaError } from '../migrations/newer-schema-error.js';

/**
 * Applies every missing migration in one IMMEDIATE transaction: the write lock
 * is taken before the versions are read, so two processes migrating the same
 * file at once apply each migration exactly once (the second waits on
 * busy_timeout, then finds nothing left to do).
 */
export function migrateSqlite(db: Database): void {
  const apply = db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at TEXT NOT NULL
    )`);
    const applied = new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
    const known = Math.max(0, ...MIGRATIONS.map((m) => m.version));
    if ([...applied].some((v) => v > known)) throw new NewerSchemaError();
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      db.exec(m.sqlite);
      record.run(m.version, m.name, new Date().toISOString());
    }
  });
  apply.immediate();
}
