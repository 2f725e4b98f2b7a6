import type { PoolClient } from 'pg';
import { MIGRATIONS } from '../migrations/migration-list.js';
import { NewerSchemaError } from '../migrations/newer-schema-error.js';
import { quoteSchema } from './postgres-queries.js';

// First key of the two-int advisory lock ('cus'); the second is the schema's hash,
// so migrations of different schemas in one database do not wait on each other.
const MIGRATE_LOCK_CLASS = 0x637573;

/**
 * Applies every missing migration in one transaction, under a transaction-level
 * advisory lock taken before anything else (even CREATE SCHEMA IF NOT EXISTS
 * races between sessions). A second process calling migrate() at the same time
 * waits, then finds every version recorded and does nothing. PostgreSQL DDL is
 * transactional, so a failed migration leaves no half-made schema.
 */
export async function migratePostgres(client: PoolClient, schema: string): Promise<void> {
  const s = quoteSchema(schema);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATE_LOCK_CLASS, schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations`);
    const applied = new Set(rows.map((r) => r.version));
    const known = Math.max(0, ...MIGRATIONS.map((m) => m.version));
    if ([...applied].some((v) => v > known)) throw new NewerSchemaError();
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      await client.query(m.postgres(s));
      await client.query(`INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
