import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import type { TestPostgresInfo } from './postgres-context.js';

export type { TestPostgresInfo } from './postgres-context.js';

function info(): TestPostgresInfo {
  const provided = inject('custosPostgres') as TestPostgresInfo | undefined;
  return provided ?? { url: null, source: null, skipReason: 'test-support/global-setup.ts did not run' };
}

/**
 * True when the run has a PostgreSQL. When it has none this says so loudly
 * (never a silent skip), and with CI=true it throws: CI skips nothing.
 *
 * @example
 * describe.skipIf(!hasPostgres())('PostgresStorage', () => { … });
 */
export function hasPostgres(): boolean {
  const i = info();
  if (i.url) return true;
  if (process.env.CI === 'true') throw new Error(`PostgreSQL is required in CI: ${i.skipReason}`);
  console.warn(`[custos test-support] SKIPPING PostgreSQL tests: ${i.skipReason}`);
  return false;
}

/** The run's superuser URL (throws when there is none; guard with {@link hasPostgres}). */
export function postgresUrl(): string {
  const { url, skipReason } = info();
  if (!url) throw new Error(`No PostgreSQL for this run: ${skipReason}`);
  return url;
}

/** A database or schema made for one test, and how to remove it. */
export interface TestDatabase {
  /** Connection URL (for a schema: the run's database, see `schema`). */
  readonly url: string;
  /** The database's name, or the schema's. */
  readonly name: string;
  drop(): Promise<void>;
}

const uniqueName = (prefix: string): string => `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates a fresh, uniquely named database; `drop()` removes it (closing its sessions). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = uniqueName('custos_test');
  await withAdmin((c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
  const url = new URL(postgresUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () =>
      withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)).then(
        () => undefined,
      ),
  };
}

/**
 * Reserves a fresh, uniquely named schema in the run's database (cheaper than a
 * database; `PostgresStorage`'s `schema` option creates it on migrate). `drop()`
 * removes it with everything in it.
 */
export async function createTestSchema(): Promise<TestDatabase> {
  const name = uniqueName('custos_test');
  return {
    url: postgresUrl(),
    name,
    drop: () =>
      withAdmin((c) => c.query(`DROP SCHEMA IF EXISTS ${c.escapeIdentifier(name)} CASCADE`)).then(() => undefined),
  };
}

/** Whether a PostgreSQL role (login) exists: roles are cluster-wide, so a dropped dynamic user is gone for good. */
export async function postgresRoleExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
    return (rowCount ?? 0) > 0;
  } finally {
    await client.end();
  }
}
