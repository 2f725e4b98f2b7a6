import { createStorage } from '@custos/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../../test-support/postgres.js';
import type { Storage } from '../ports/storage.js';
import { requestEvent, testSigner } from '../test-support/audit-fixtures.js';
import { AuditLog } from './audit-log.js';
import { verifyAudit } from './audit-verify.js';

// Integration: several nodes' audit logs on one PostgreSQL database (an HA
// deployment). Their checkpoints must form one chain within the interval,
// with no node mistaking another's records or checkpoints for tampering.
describe.skipIf(!hasPostgres())('AuditLog on PostgreSQL, several nodes', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  async function database(): Promise<{ db: TestDatabase; open: () => Promise<Storage> }> {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const open = async () => {
      const storage = createStorage(db.url);
      cleanups.push(() => storage.close());
      await storage.migrate();
      return storage;
    };
    return { db, open };
  }

  it('three nodes writing at once keep one checkpoint chain, never more than the interval apart', async () => {
    const { open } = await database();
    const { signer, publicKeys } = testSigner();
    const failures: unknown[] = [];
    const logs = await Promise.all(
      [0, 1, 2].map(async () =>
        AuditLog.open({
          store: (await open()).audit,
          signer,
          checkpointEvery: 7,
          onIntegrityFailure: (e) => failures.push(e),
        }),
      ),
    );
    await Promise.all(
      logs.map(async (log, n) => {
        for (let i = 0; i < 20; i++) {
          await Promise.all(Array.from({ length: 3 }, (_, j) => log.record(requestEvent(n * 1_000 + i * 10 + j))));
        }
      }),
    );
    for (const log of logs) await log.close();
    expect(failures).toEqual([]);
    const storage = await open();
    expect(await verifyAudit(storage.audit, { publicKeys, defaultEvery: 7 })).toMatchObject({
      ok: true,
      events: 180,
      lastSeq: 180,
    });
    // A node that starts later checks the chain the others left, and continues it.
    const late = await AuditLog.open({ store: storage.audit, signer, checkpointEvery: 7 });
    await late.record(requestEvent(9_999));
    await late.close();
    expect(await verifyAudit(storage.audit, { publicKeys, defaultEvery: 7 })).toMatchObject({ ok: true, events: 181 });
  });
});
