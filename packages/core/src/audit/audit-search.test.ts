import { createStorage } from '@custos/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres } from '../../../../test-support/postgres.js';
import type { Storage } from '../ports/storage.js';
import { requestEvent, testSigner } from '../test-support/audit-fixtures.js';
import { AuditLog } from './audit-log.js';
import { searchAudit } from './audit-search.js';

// Integration: the bounded, newest-first search over the real SQLite and
// PostgreSQL audit stores (their `range` and `firstSeqSince` reads).
const backends = ['sqlite', ...(hasPostgres() ? ['postgres'] : [])];

describe.each(backends)('searchAudit (%s)', (backend) => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  /** 300 events: every 10th a deny under kv/finance/ by task-b (child of task-a), the rest allowed reads. */
  async function trail(): Promise<Storage> {
    let url = 'sqlite::memory:';
    if (backend === 'postgres') {
      const db = await createTestDatabase();
      cleanups.push(() => db.drop());
      url = db.url;
    }
    const storage = createStorage(url);
    cleanups.push(() => storage.close());
    await storage.migrate();
    const log = await AuditLog.open({ store: storage.audit, signer: testSigner().signer });
    for (let i = 1; i <= 300; i++) {
      await log.record(
        i % 10 === 0
          ? requestEvent(i, {
              decision: 'deny',
              status: 403,
              auth: { identity: 'role:ledger', task_chain: ['task-a', 'task-b'], task_id: 'task-b' },
              request: { method: 'GET', route: '/v1/secrets/*', path: `kv/finance/item-${i}`, action: 'read' },
            })
          : requestEvent(i),
      );
    }
    await log.close();
    return storage;
  }
  const seqs = (r: Awaited<ReturnType<typeof searchAudit>>) => r.records.map((m) => m.record.seq);

  it('finds matches newest first, pages with the cursor, and matches a root task over its subtree', async () => {
    const { audit } = await trail();
    // Event i is seq i.
    const first = await searchAudit(audit, { task: 'task-a', path: 'kv/finance/*', decision: 'deny' }, { limit: 4 });
    expect(seqs(first)).toEqual([300, 290, 280, 270]);
    expect(first).toMatchObject({ nextBeforeSeq: 270, complete: false });
    const second = await searchAudit(audit, { task: 'task-a' }, { limit: 100, beforeSeq: first.nextBeforeSeq! });
    expect(seqs(second)).toHaveLength(26);
    expect(second).toMatchObject({ complete: true, scannedThroughSeq: 1 });
    expect(second.nextBeforeSeq).toBeUndefined();
    expect(second.records[0]!.event).toMatchObject({ auth: { task_id: 'task-b' }, decision: 'deny' });
    // Exact match: a prefix of a path without `*` and a task id's prefix match nothing.
    expect(seqs(await searchAudit(audit, { path: 'kv/finance/item-1' }, { limit: 10 }))).toEqual([]);
    expect(seqs(await searchAudit(audit, { task: 'task-' }, { limit: 10 }))).toEqual([]);
    expect(seqs(await searchAudit(audit, { path: 'kv/finance/item-10' }, { limit: 10 }))).toEqual([10]);
    expect(seqs(await searchAudit(audit, { identity: 'role:ledger', action: 'read' }, { limit: 500 }))).toHaveLength(
      30,
    );
  });

  it('stops at the scan bound and says where, so the caller continues', async () => {
    const { audit } = await trail();
    const page = await searchAudit(audit, { path: 'kv/finance/item-10' }, { limit: 10, maxScan: 120, batchSize: 50 });
    expect(page).toMatchObject({ records: [], complete: false, scannedThroughSeq: 181, nextBeforeSeq: 181 });
    let cursor = page.nextBeforeSeq;
    let found: number[] = [];
    while (cursor !== undefined) {
      const next = await searchAudit(
        audit,
        { path: 'kv/finance/item-10' },
        { limit: 10, beforeSeq: cursor, maxScan: 120 },
      );
      found = found.concat(seqs(next));
      cursor = next.nextBeforeSeq;
    }
    expect(found).toEqual([10]);
  });

  it('narrows by time on the event time, inclusive', async () => {
    const { audit } = await trail();
    const all = await searchAudit(audit, { decision: 'deny' }, { limit: 500 });
    const times = all.records.map((m) => m.event.time);
    const [newest, , third] = times;
    const between = await searchAudit(audit, { decision: 'deny', since: third!, until: newest! }, { limit: 500 });
    // Several events can share a millisecond: everything returned lies in the window, and the window's ends are in.
    for (const m of between.records) expect(m.event.time >= third! && m.event.time <= newest!).toBe(true);
    expect(seqs(between)).toEqual(expect.arrayContaining([300, 290, 280]));
    expect(seqs(between)).toEqual(seqs(all).filter((_, i) => times[i]! >= third! && times[i]! <= newest!));
    expect(await searchAudit(audit, { since: '2999-01-01T00:00:00.000Z' }, { limit: 5 })).toMatchObject({
      records: [],
      complete: true,
    });
  });
});
