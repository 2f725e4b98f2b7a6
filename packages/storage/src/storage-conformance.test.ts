import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import { createTestSchema, hasPostgres } from '../../../test-support/postgres.js';
import { runStorageConformance } from './conformance/index.js';
import { PostgresStorage } from './postgres/postgres-storage.js';
import { SqliteStorage } from './sqlite/sqlite-storage.js';

runStorageConformance('sqlite :memory:', async () => ({
  storage: new SqliteStorage({ path: ':memory:' }),
  cleanup: async () => undefined,
}));

runStorageConformance('sqlite file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'custos-storage-'));
  return {
    storage: new SqliteStorage({ path: join(dir, 'custos.db') }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

// The server's configuration: the file held exclusively, reads served from the entry cache.
runStorageConformance('sqlite file, exclusive with entry cache', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'custos-storage-'));
  return {
    storage: new SqliteStorage({ path: join(dir, 'custos.db'), exclusive: true, detectTransactionMisuse: false }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

// A cache so small it evicts on nearly every fill: eviction must never serve a wrong answer.
runStorageConformance('sqlite file, exclusive with a tiny entry cache', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'custos-storage-'));
  return {
    storage: new SqliteStorage({ path: join(dir, 'custos.db'), exclusive: true, cacheBytes: 600 }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe.skipIf(!hasPostgres())('postgres', () => {
  runStorageConformance('postgres', async () => {
    const schema = await createTestSchema();
    return {
      storage: new PostgresStorage({ connectionString: schema.url, schema: schema.name }),
      cleanup: () => schema.drop(),
    };
  });
});
