import type { TestProject } from 'vitest/node';
import type { TestPostgresInfo } from './postgres-context.js';
import { type FoundPostgres, findPostgres } from './postgres-server.js';

/**
 * vitest global setup: finds (or starts) one PostgreSQL for the whole run and
 * provides its URL as `custosPostgres`; stops what it started on teardown.
 *
 * With CI=true a missing PostgreSQL fails the run: no integration test may
 * skip there. Elsewhere the PostgreSQL tests skip, loudly (see postgres.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let found: FoundPostgres | undefined;
  let info: TestPostgresInfo;
  try {
    found = await findPostgres();
    info = { url: found.url, source: found.source };
  } catch (e) {
    if (process.env.CI === 'true') throw e;
    info = { url: null, source: null, skipReason: e instanceof Error ? e.message : String(e) };
    console.warn(`\n[custos test-support] NO POSTGRESQL: PostgreSQL tests will be SKIPPED.\n${info.skipReason}\n`);
  }
  project.provide('custosPostgres', info);
  return async () => {
    await found?.stop();
  };
}
