import { randomUUID } from 'node:crypto';
import {
  AUDIT_EMPTY_HEAD,
  type AuditChainHead,
  AuditConflictError,
  type AuditRecord,
  type AuditStore,
  auditChainHash,
  auditDictionaryId,
  auditEventRefs,
  canonicalJson,
  chainAuditRecords,
  isCompactAuditEvent,
  StorageError,
} from '@custos/core';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestSchema, hasPostgres, type TestDatabase } from '../../../test-support/postgres.js';
import { PostgresStorage } from './postgres/postgres-storage.js';
import { type AuditSqlBackend, auditSqlBackends } from './test-support/audit-sql-backends.js';

const BASE = Date.parse('2030-01-01T00:00:00.000Z');

/** Request events after `head`, the record at seq n made by task `taskOf(n)`, reading one of two paths. */
function requests(head: AuditChainHead, count: number, taskOf: (seq: number) => string): AuditRecord[] {
  const items = Array.from({ length: count }, (_, i) => {
    const seq = head.seq + 1 + i;
    const time = new Date(BASE + seq * 1000).toISOString();
    const event = {
      time,
      type: 'request',
      request_id: randomUUID(),
      auth: { task_id: taskOf(seq), identity: 'spiffe://custos/agent', role: 'enricher', policies: ['enrich'] },
      request: { method: 'GET', route: '/v1/secrets/data/*', path: `kv/app/${seq % 2}`, action: 'read' },
      decision: 'allow',
      status: 200,
    };
    return { ts: time, event: canonicalJson(event) };
  });
  return chainAuditRecords(head, items);
}

const headOf = (records: readonly AuditRecord[]): AuditChainHead => {
  const last = records.at(-1);
  return last ? { seq: last.seq, hash: last.hash } : AUDIT_EMPTY_HEAD;
};

/** The dictionary id of task `task`'s auth entry, as the records reference it. */
function authId(records: readonly AuditRecord[], task: string): string {
  const r = records.find((r) => (JSON.parse(r.event) as { auth: { task_id: string } }).auth.task_id === task)!;
  return auditDictionaryId(canonicalJson((JSON.parse(r.event) as { auth: unknown }).auth));
}

/** Deletes what an archive run with anchor `beforeSeq` deletes, batch by batch; the rows deleted. */
async function deleteAll(audit: AuditStore, beforeSeq: number, limit: number): Promise<number> {
  let total = 0;
  for (let n = await audit.deleteArchived(beforeSeq, limit); n > 0; n = await audit.deleteArchived(beforeSeq, limit)) {
    total += n;
  }
  return total;
}

/** Whether records read back as one unbroken chain from the first (its prev_hash as stored). */
function unbroken(records: readonly AuditRecord[]): boolean {
  return records.every(
    (r, i) => auditChainHash(r.prevHash, r.event) === r.hash && (i === 0 || r.prevHash === records[i - 1]!.hash),
  );
}

// The audit dictionary on both databases: an archive run deletes the entries
// that only archived records referenced, in bounded batches, and never one
// an online record references, whichever writer wrote it and whatever its
// cache holds (the invariant at AUDIT_DICTIONARY_SPAN).
describe.each(auditSqlBackends())('audit dictionary collection (%s)', (_, make) => {
  let backend: AuditSqlBackend | undefined;
  afterEach(async () => {
    await backend?.cleanup();
    backend = undefined;
  });

  const dictionary = async () =>
    (
      await backend!.sql<{ id: string; last_seq: number | string | null }>('SELECT id, last_seq FROM audit_dictionary')
    ).map((r) => ({ id: r.id, lastSeq: r.last_seq === null ? null : Number(r.last_seq) }));

  it('after the records, a run deletes the entries only archived records used, in batches a restarted node finishes', async () => {
    backend = await make();
    const span = 10;
    // Five tasks of twenty records each, in batches of five; two request entries used throughout.
    const records = requests(AUDIT_EMPTY_HEAD, 100, (seq) => `tsk_${Math.floor((seq - 1) / 20)}`);
    let storage = await backend.open({ auditDictionarySpan: span });
    for (let i = 0; i < records.length; i += 5) await storage.audit.append(records.slice(i, i + 5));
    expect(await dictionary()).toHaveLength(5 + 2);

    // Records and checkpoints first, then the dictionary, one row at a time; the process stops after one entry.
    let deleted = 0;
    while ((await backend.sql('SELECT seq FROM audit_log WHERE seq < 61')).length > 0) {
      deleted += await storage.audit.deleteArchived(61, 7);
    }
    expect(deleted).toBe(60);
    expect(await storage.audit.deleteArchived(61, 1)).toBe(1);
    expect(await dictionary()).toHaveLength(6);
    await storage.close();

    storage = await backend.open({ auditDictionarySpan: span });
    expect(await deleteAll(storage.audit, 61, 1)).toBe(1);
    expect(await deleteAll(storage.audit, 61, 1)).toBe(0);
    const left = await dictionary();
    // tsk_0 and tsk_1 (seqs 1–40) are gone; tsk_2 (41–60) was last recorded within the span of the anchor and stays
    // until the next run; what online records use stays. Nothing left was last used below the anchor less the span.
    expect(left.map((e) => e.id)).not.toContain(authId(records, 'tsk_0'));
    expect(left.map((e) => e.id)).not.toContain(authId(records, 'tsk_1'));
    expect(left.map((e) => e.id)).toEqual(expect.arrayContaining([authId(records, 'tsk_3'), authId(records, 'tsk_4')]));
    expect(left.every((e) => e.lastSeq !== null && e.lastSeq >= 61 - span)).toBe(true);
    // Every online record reads back as it was hashed, the anchor with its prev_hash written out.
    expect(await storage.audit.range(1, 1000)).toEqual(records.slice(60));

    // The next anchor past tsk_2's span takes it too.
    await deleteAll(storage.audit, 81, 50);
    expect((await dictionary()).map((e) => e.id)).not.toContain(authId(records, 'tsk_2'));
    expect(await storage.audit.range(1, 1000)).toEqual(records.slice(80));
    await storage.close();
  });

  it('a writer that holds an entry in its cache needs no write within the span, and records it again after', async () => {
    backend = await make();
    const span = 10;
    const a = await backend.open({ auditDictionarySpan: span });
    const b = await backend.open({ auditDictionarySpan: span });
    const appended: AuditRecord[] = [];
    const append = async (store: AuditStore, count: number, task: string) => {
      const batch = requests(headOf(appended), count, () => task);
      await store.append(batch);
      appended.push(...batch);
    };
    const x = () => authId(appended, 'tsk_x');
    const lastSeqOfX = async () => (await dictionary()).find((e) => e.id === x())?.lastSeq;

    // Writer b uses tsk_x at 1–5 (recorded at 5); writer a then writes 6–30 for another task.
    await append(b.audit, 5, 'tsk_x');
    await append(a.audit, 25, 'tsk_y');
    expect(await lastSeqOfX()).toBe(5);
    // A run with anchor 30 (1–29 archived) deletes tsk_x: 5 < 30 − 10.
    await deleteAll(a.audit, 30, 4);
    expect(await lastSeqOfX()).toBeUndefined();
    // Writer b's cache still holds it, from seq 5: past the span, b records it again (the entry comes back).
    await append(b.audit, 5, 'tsk_x');
    expect(await lastSeqOfX()).toBe(35);

    // Within the span b writes no dictionary row at all...
    await append(b.audit, 5, 'tsk_x');
    expect(await lastSeqOfX()).toBe(35);
    // ...and no run can take the entry meanwhile: any anchor is at most the head (43 here), and 35 ≥ 43 − 10.
    await append(a.audit, 3, 'tsk_y');
    await deleteAll(a.audit, 43, 4);
    expect(await lastSeqOfX()).toBe(35);
    await append(b.audit, 2, 'tsk_x');
    expect(await lastSeqOfX()).toBe(35);

    // A third process reads every online record whole: compact events whose entries are all there.
    const c = await backend.open({ auditDictionarySpan: span });
    const online = await c.audit.range(1, 1000);
    expect(online).toEqual(appended.slice(42));
    expect(online[0]!.seq).toBe(43);
    const rows = await backend.sql<{ event: string }>('SELECT event FROM audit_log WHERE seq >= 43');
    expect(rows.every((r) => isCompactAuditEvent(r.event))).toBe(true);
    expect(rows.filter((r) => auditEventRefs(r.event).includes(x()))).toHaveLength(2);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('two writers and an archiving node at once: no deadlock, no online record loses an entry', async () => {
    backend = await make();
    const span = 6;
    const writers = [
      await backend.open({ auditDictionarySpan: span }),
      await backend.open({ auditDictionarySpan: span }),
    ];
    const archiver = await backend.open({ auditDictionarySpan: span });
    const written = new Map<number, AuditRecord>();
    let stop = false;

    const write = async (audit: AuditStore, rounds: number) => {
      for (let round = 0; round < rounds; round++) {
        // Tasks come and go: about three at a time, a new one every fifteen records.
        for (;;) {
          const head = await audit.head();
          const batch = requests(head ? { seq: head.seq, hash: head.hash } : AUDIT_EMPTY_HEAD, 3, (seq) => {
            return `tsk_${Math.floor(seq / 15) + (seq % 3)}`;
          });
          try {
            await audit.append(batch);
            for (const r of batch) written.set(r.seq, r);
            break;
          } catch (e) {
            if (!(e instanceof AuditConflictError)) throw e;
          }
        }
        // Let the other writer and the archiver in (SQLite's calls never wait on I/O).
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const archive = async () => {
      let runs = 0;
      while (!stop) {
        const head = await archiver.audit.head();
        if (head && head.seq > 20) {
          await deleteAll(archiver.audit, head.seq - 10, 3);
          runs += 1;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      return runs;
    };

    const archiving = archive();
    await Promise.all(writers.map((w) => write(w.audit, 60)));
    stop = true;
    expect(await archiving).toBeGreaterThan(0);

    const reader = await backend.open({ auditDictionarySpan: span });
    const online = await reader.audit.range(1, 10_000);
    expect(online.length).toBeGreaterThan(10);
    // Every online record is the one written, whole (a missing entry would leave its compact form).
    expect(online).toEqual(online.map((r) => written.get(r.seq)));
    expect(unbroken(online)).toBe(true);
    // 24 tasks came and went; once the last run is done, the dictionary holds the entries of the
    // last 10 + 6 seqs or so (the online window and the span): a few tasks and the two paths.
    expect(written.size).toBe(360);
    const last = Math.max(...written.keys());
    await deleteAll(archiver.audit, last - 10, 3);
    expect((await dictionary()).length).toBeLessThanOrEqual(5 + 2);
    expect(await reader.audit.range(1, 10_000)).toEqual([...written.values()].filter((r) => r.seq >= last - 10));
    await Promise.all([...writers, archiver, reader].map((s) => s.close()));
  });

  it('entries stored before the migration take the head as their last use; one an earlier version adds later is kept', async () => {
    backend = await make();
    await backend.migrateTo(4);
    const old = JSON.stringify({ task_id: 'tsk_old' });
    await backend.sql('INSERT INTO audit_dictionary (id, value) VALUES (?, ?)', [auditDictionaryId(old), old]);
    await backend.sql("INSERT INTO audit_log (seq, ts, prev_hash, hash, event) VALUES (42, 't', 'p', 'h', '{}')");
    const storage = await backend.open({ auditDictionarySpan: 0 });
    expect(await dictionary()).toEqual([{ id: auditDictionaryId(old), lastSeq: 42 }]);

    // A node of the earlier version, still running, inserts without a last use: never collected.
    const older = JSON.stringify({ task_id: 'tsk_older' });
    await backend.sql('INSERT INTO audit_dictionary (id, value) VALUES (?, ?)', [auditDictionaryId(older), older]);
    await deleteAll(storage.audit, 43, 10);
    expect(await dictionary()).toEqual([{ id: auditDictionaryId(older), lastSeq: null }]);
    await storage.close();
  });

  it('a use recorded in a transaction that rolled back is not taken as recorded: the entry goes in with the next append', async () => {
    backend = await make();
    const storage = await backend.open({ auditDictionarySpan: 10 });
    const records = requests(AUDIT_EMPTY_HEAD, 5, () => 'tsk_x');
    await expect(
      storage.transaction(async (tx) => {
        await tx.audit.append(records);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await dictionary()).toEqual([]);
    await storage.audit.append(records);
    expect((await dictionary()).map((e) => e.id)).toContain(authId(records, 'tsk_x'));
    expect(await storage.audit.range(1, 100)).toEqual(records);
    await storage.close();
  });

  it('refuses a negative or fractional span', async () => {
    backend = await make();
    for (const span of [-1, 1.5, Number.NaN]) {
      await expect(backend.open({ auditDictionarySpan: span })).rejects.toThrow(/non-negative integer/);
    }
  });
});

// PostgreSQL only: the delete's locking and the read snapshot's connection.
describe.skipIf(!hasPostgres())('audit dictionary collection on PostgreSQL', () => {
  let schema: TestDatabase | undefined;
  afterEach(async () => {
    await schema?.drop();
    schema = undefined;
  });

  /** A session of its own on the schema (as another node's transaction). */
  async function session(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: schema!.url, options: `-c search_path=${schema!.name}` });
    await client.connect();
    return client;
  }

  it('an entry a writer holds locked is left for the next run: the delete neither waits nor takes it', async () => {
    schema = await createTestSchema();
    const storage = new PostgresStorage({ connectionString: schema.url, schema: schema.name, auditDictionarySpan: 0 });
    await storage.migrate();
    const records = requests(AUDIT_EMPTY_HEAD, 20, (seq) => (seq <= 5 ? 'tsk_a' : seq <= 10 ? 'tsk_c' : 'tsk_b'));
    for (let i = 0; i < 20; i += 5) await storage.audit.append(records.slice(i, i + 5));
    const ids = async () => {
      const client = await session();
      try {
        return (await client.query<{ id: string }>('SELECT id FROM audit_dictionary')).rows.map((r) => r.id);
      } finally {
        await client.end();
      }
    };
    // Another node is recording a use of tsk_a's entry right now (its row lock held).
    const writer = await session();
    await writer.query('BEGIN');
    await writer.query('SELECT 1 FROM audit_dictionary WHERE id = $1 FOR UPDATE', [authId(records, 'tsk_a')]);
    // A run with anchor 20 (span 0) takes tsk_c's entry and returns, tsk_a's locked one left.
    await deleteAll(storage.audit, 20, 10);
    expect(await ids()).toContain(authId(records, 'tsk_a'));
    expect(await ids()).not.toContain(authId(records, 'tsk_c'));
    await writer.query('COMMIT');
    await writer.end();
    // The next run takes it.
    await deleteAll(storage.audit, 20, 10);
    expect(await ids()).not.toContain(authId(records, 'tsk_a'));
    expect(await storage.audit.range(20, 10)).toEqual(records.slice(19));
    await storage.close();
  });

  it('a read snapshot that fails gives its connection back: a pool of one still serves the next read', async () => {
    schema = await createTestSchema();
    const storage = new PostgresStorage({
      connectionString: schema.url,
      schema: schema.name,
      maxConnections: 1,
      connectTimeoutMs: 2_000,
    });
    await storage.migrate();
    const records = requests(AUDIT_EMPTY_HEAD, 3, () => 'tsk_x');
    await storage.audit.append(records);
    const admin = await session();
    await admin.query('ALTER TABLE audit_log RENAME TO audit_log_away');
    for (let i = 0; i < 2; i++) await expect(storage.audit.range(1, 10)).rejects.toBeInstanceOf(StorageError);
    await admin.query('ALTER TABLE audit_log_away RENAME TO audit_log');
    await admin.end();
    expect(await storage.audit.range(1, 10)).toEqual(records);
    await storage.close();
  });
});
