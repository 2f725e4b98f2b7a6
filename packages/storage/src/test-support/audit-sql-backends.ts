import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Storage } from '@custos/core';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createTestSchema, hasPostgres } from '../../../../test-support/postgres.js';
import { postgresSql, sqliteSql } from '../../../../test-support/raw-sql.js';
import { MIGRATIONS } from '../migrations/migration-list.js';
import { quoteSchema } from '../postgres/postgres-queries.js';
import { PostgresStorage } from '../postgres/postgres-storage.js';
import { SqliteStorage } from '../sqlite/sqlite-storage.js';

/** Options a test opens the storage with. */
export interface AuditSqlOpenOptions {
  readonly auditDictionarySpan?: number;
}

/**
 * One database for a test of the audit tables: the storage as custos opens
 * it (as often as the test likes: each open is another process's view, with
 * its own caches), and raw SQL as someone with write access runs it.
 */
export interface AuditSqlBackend {
  readonly name: 'sqlite' | 'postgres';
  open(options?: AuditSqlOpenOptions): Promise<Storage>;
  /** Creates the schema as custos `version` left it (migrations up to it, recorded as the migrators do). */
  migrateTo(version: number): Promise<void>;
  /** Raw SQL (`?` placeholders), unqualified table names; rows for a query. */
  sql<T>(text: string, params?: unknown[]): Promise<T[]>;
  cleanup(): Promise<void>;
}

async function sqliteBackend(): Promise<AuditSqlBackend> {
  const dir = await mkdtemp(join(tmpdir(), 'custos-audit-sql-'));
  const path = join(dir, 'custos.db');
  return {
    name: 'sqlite',
    open: async (options = {}) => {
      const storage = new SqliteStorage({ path, ...options });
      await storage.migrate();
      return storage;
    },
    migrateTo: async (version) => {
      const db = new Database(path);
      try {
        db.exec(
          'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
        );
        for (const m of MIGRATIONS.filter((m) => m.version <= version)) {
          db.exec(m.sqlite);
          db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, new Date().toISOString());
        }
      } finally {
        db.close();
      }
    },
    sql: async <T>(text: string, params: unknown[] = []) => sqliteSql<T>(path, text, params),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

async function postgresBackend(): Promise<AuditSqlBackend> {
  const schema = await createTestSchema();
  return {
    name: 'postgres',
    open: async (options = {}) => {
      const storage = new PostgresStorage({ connectionString: schema.url, schema: schema.name, ...options });
      await storage.migrate();
      return storage;
    },
    migrateTo: async (version) => {
      const client = new pg.Client({ connectionString: schema.url });
      await client.connect();
      const s = quoteSchema(schema.name);
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
        await client.query(`CREATE TABLE ${s}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now())`);
        for (const m of MIGRATIONS.filter((m) => m.version <= version)) {
          await client.query(m.postgres(s));
          await client.query(`INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
        }
      } finally {
        await client.end();
      }
    },
    sql: <T>(text: string, params: unknown[] = []) => postgresSql<T>(schema.url, schema.name, text, params),
    cleanup: () => schema.drop(),
  };
}

/** Both databases for `describe.each`: SQLite always, PostgreSQL when the run has one (always in CI). */
export function auditSqlBackends(): Array<[string, () => Promise<AuditSqlBackend>]> {
  const backends: Array<[string, () => Promise<AuditSqlBackend>]> = [['sqlite', sqliteBackend]];
  if (hasPostgres()) backends.push(['postgres', postgresBackend]);
  return backends;
}
