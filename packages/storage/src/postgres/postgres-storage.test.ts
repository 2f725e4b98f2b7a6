import { AuditConflictError, StorageError } from '@custos/core';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  createTestDatabase,
  createTestSchema,
  hasPostgres,
  type TestDatabase,
} from '../../../../test-support/postgres.js';
import { MIGRATIONS } from '../migrations/migration-list.js';
import { PostgresStorage } from './postgres-storage.js';

const record = (seq: number) => ({
  seq,
  ts: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
  prevHash: String(seq - 1).padStart(64, '0'),
  hash: String(seq).padStart(64, '0'),
  event: `{"seq":${seq}}`,
});

describe.skipIf(!hasPostgres())('PostgresStorage', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function schema(): Promise<TestDatabase> {
    const s = await createTestSchema();
    cleanups.push(() => s.drop());
    return s;
  }
  function open(url: string, schemaName?: string): PostgresStorage {
    const storage = new PostgresStorage({ connectionString: url, schema: schemaName });
    cleanups.push(() => storage.close());
    return storage;
  }

  it('runs against the PostgreSQL the global setup found (embedded when forced)', async () => {
    const info = inject('custosPostgres');
    if (process.env.CUSTOS_TEST_FORCE_EMBEDDED_PG === '1') expect(info.source).toBe('embedded');
    const client = new pg.Client({ connectionString: info.url! });
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    await client.end();
    console.info(`[storage tests] PostgreSQL ${rows[0]?.server_version} (${info.source})`);
  });

  it('migrates safely when several processes call migrate() at once', async () => {
    const s = await schema();
    const storages = [0, 1, 2, 3].map(() => open(s.url, s.name));
    await Promise.all(storages.map((st) => st.migrate()));
    const client = new pg.Client({ connectionString: s.url });
    await client.connect();
    const { rows } = await client.query(`SELECT version FROM "${s.name}".schema_migrations ORDER BY version`);
    await client.end();
    expect(rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 5 }]);
    await storages[0]!.entries.put('ns', 'k', new Uint8Array([1]));
    expect((await storages[3]!.entries.get('ns', 'k'))?.value).toEqual(new Uint8Array([1]));
  });

  it('upgrades a schema of the first release: its audit checkpoints stay, as legacy (v1) ones', async () => {
    const s = await schema();
    const client = new pg.Client({ connectionString: s.url });
    await client.connect();
    const q = `"${s.name}"`;
    await client.query(`CREATE SCHEMA ${q}`);
    await client.query(MIGRATIONS[0]!.postgres(q));
    await client.query(`CREATE TABLE ${q}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    await client.query(`INSERT INTO ${q}.schema_migrations (version, name) VALUES (1, 'entries and audit log')`);
    await client.query(
      `INSERT INTO ${q}.audit_checkpoints (seq, hash, ts, key_id, signature) VALUES (7, 'h7', 't7', 'k', 's7')`,
    );
    await client.end();
    const upgraded = open(s.url, s.name);
    await upgraded.migrate();
    expect(await upgraded.audit.checkpoints()).toEqual([
      { version: 1, seq: 7, hash: 'h7', ts: 't7', keyId: 'k', signature: 's7' },
    ]);
    const chained = { version: 2 as const, seq: 9, hash: 'h9', ts: 't9', keyId: 'k', signature: 's9' };
    await upgraded.audit.appendCheckpoint({
      ...chained,
      prevSeq: 7,
      prevDigest: '0'.repeat(64),
      every: 10,
      intervalMs: 1,
    });
    expect((await upgraded.audit.lastCheckpoint())?.seq).toBe(9);
  });

  it('keeps schemas apart, and defaults to the custos schema', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const a = open(db.url, 'tenant_a');
    const b = open(db.url, 'tenant_b');
    const dflt = open(db.url);
    expect(dflt.schema).toBe('custos');
    await Promise.all([a.migrate(), b.migrate(), dflt.migrate()]);
    await a.entries.put('ns', 'k', new Uint8Array([1]));
    expect(await b.entries.get('ns', 'k')).toBeUndefined();
    expect(await dflt.entries.get('ns', 'k')).toBeUndefined();
  });

  it('refuses a schema name that is not a plain identifier', () => {
    expect(() => new PostgresStorage({ connectionString: 'postgres://x@127.0.0.1/x', schema: 'a"; DROP' })).toThrow(
      RangeError,
    );
  });

  it('lets exactly one of two nodes append the same seq', async () => {
    const s = await schema();
    const [n1, n2] = [open(s.url, s.name), open(s.url, s.name)];
    await n1.migrate();
    await n1.audit.append([record(1)]);
    for (let round = 0; round < 20; round++) {
      const head = (await n1.audit.head())!.seq;
      const batch = [record(head + 1), record(head + 2)];
      const results = await Promise.allSettled([n1.audit.append(batch), n2.audit.append(batch.slice(0, 1))]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AuditConflictError);
    }
    const all = await n1.audit.range(1, 1000);
    expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i + 1));
  });

  it('reports a transaction whose fn swallowed a failed statement as not committed', async () => {
    const s = await schema();
    const storage = open(s.url, s.name);
    await storage.migrate();
    // Make one statement fail on the server, which aborts the transaction.
    const admin = new pg.Client({ connectionString: s.url });
    await admin.connect();
    await admin.query(`ALTER TABLE "${s.name}".audit_checkpoints RENAME TO gone`);
    await admin.end();
    const err = await storage
      .transaction(async (tx) => {
        await tx.entries.put('ns', 'lost', new Uint8Array([1]));
        await tx.audit.checkpoints().catch(() => undefined);
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(await storage.entries.get('ns', 'lost')).toBeUndefined();
  });

  it('fails with StorageError, not a crash, when the server is unreachable', async () => {
    const storage = open('postgres://postgres@127.0.0.1:1/postgres');
    await expect(storage.entries.get('ns', 'k')).rejects.toBeInstanceOf(StorageError);
    await expect(storage.transaction(async () => 1)).rejects.toBeInstanceOf(StorageError);
    await expect(storage.migrate()).rejects.toBeInstanceOf(StorageError);
  });
});
