import { randomUUID } from 'node:crypto';
import {
  AUDIT_EMPTY_HEAD,
  type AuditRecord,
  auditChainHash,
  auditEventRefs,
  canonicalJson,
  chainAuditRecords,
  isCompactAuditEvent,
} from '@custos/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuditSqlBackend, auditSqlBackends } from './test-support/audit-sql-backends.js';

/** A chain of `count` request events as the server makes them: a few callers reading a few paths. */
function chain(count: number): AuditRecord[] {
  const base = Date.parse('2030-01-01T00:00:00.000Z');
  const items = Array.from({ length: count }, (_, i) => {
    const time = new Date(base + i * 1000).toISOString();
    const event = {
      time,
      type: 'request',
      request_id: randomUUID(),
      auth: { task_id: `tsk_${i % 3}`, identity: 'spiffe://custos/agent', role: 'enricher', policies: ['enrich'] },
      request: {
        method: 'GET',
        route: '/v1/secrets/data/*',
        path: `kv/app/${i % 2}`,
        action: 'read',
        source_ip: '10.0.0.1',
      },
      decision: i % 5 === 4 ? 'deny' : 'allow',
      status: i % 5 === 4 ? 403 : 200,
      details: { phase: 'response' },
    };
    return { ts: time, event: canonicalJson(event) };
  });
  return chainAuditRecords(AUDIT_EMPTY_HEAD, items);
}

/** The first seq at which the records stop being one valid chain (0: none). */
function firstBreak(records: readonly AuditRecord[]): number {
  let prev = AUDIT_EMPTY_HEAD.hash;
  for (const r of records) {
    if (r.prevHash !== prev || auditChainHash(r.prevHash, r.event) !== r.hash) return r.seq;
    prev = r.hash;
  }
  return 0;
}

// Compact audit rows on both databases: old (full) rows and new (compact)
// rows read back as the exact records that were hashed, and an edit to a
// compact row or to a dictionary entry breaks the chain where it is used.
describe.each(auditSqlBackends())('compact audit rows (%s)', (_, make) => {
  let backend: AuditSqlBackend | undefined;
  afterEach(async () => {
    await backend?.cleanup();
    backend = undefined;
  });

  it('old full rows and new compact rows read back as the exact records, and verify as one chain', async () => {
    backend = await make();
    const records = chain(40);
    let storage = await backend.open();
    // Rows written before compaction: the full event and both hex hashes, as the old code stored them.
    for (const r of records.slice(0, 15)) {
      await backend.sql('INSERT INTO audit_log (seq, ts, prev_hash, hash, event) VALUES (?, ?, ?, ?, ?)', [
        r.seq,
        r.ts,
        r.prevHash,
        r.hash,
        r.event,
      ]);
    }
    await storage.audit.append(records.slice(15, 30));
    await storage.audit.append(records.slice(30));
    expect(await storage.audit.range(1, 100)).toEqual(records);
    expect(await storage.audit.range(16, 3)).toEqual(records.slice(15, 18));
    expect(await storage.audit.head()).toEqual(records[39]);
    expect(firstBreak(await storage.audit.range(1, 100))).toBe(0);
    await storage.close();

    // What is stored: new rows compact, their prev_hash derived; old rows untouched.
    const rows = await backend.sql<{ seq: number | string; prev_hash: string; event: string }>(
      'SELECT seq, prev_hash, event FROM audit_log ORDER BY seq',
    );
    expect(rows.slice(0, 15).every((r) => !isCompactAuditEvent(r.event) && r.prev_hash.length === 64)).toBe(true);
    expect(rows.slice(15).every((r) => isCompactAuditEvent(r.event))).toBe(true);
    expect(rows.slice(16, 30).every((r) => r.prev_hash === '')).toBe(true);
    const stored = rows.slice(15).reduce((n, r) => n + r.event.length, 0);
    const full = records.slice(15).reduce((n, r) => n + r.event.length, 0);
    expect(stored).toBeLessThan(full / 3);

    // A new process (an empty dictionary cache) reads the same.
    storage = await backend.open();
    expect(await storage.audit.range(1, 100)).toEqual(records);
    await storage.close();
  });

  it('an edited compact row breaks the chain at its seq', async () => {
    backend = await make();
    const records = chain(12);
    const storage = await backend.open();
    await storage.audit.append(records);
    const [row] = await backend.sql<{ event: string }>('SELECT event FROM audit_log WHERE seq = ?', [5]);
    expect(row!.event).toContain('"s":403');
    await backend.sql('UPDATE audit_log SET event = ? WHERE seq = ?', [row!.event.replace('"s":403', '"s":200'), 5]);
    expect(firstBreak(await storage.audit.range(1, 100))).toBe(5);
    await storage.close();
  });

  it('a rewritten dictionary entry breaks the chain at the first record using it, even under a running store', async () => {
    backend = await make();
    const records = chain(12);
    const storage = await backend.open();
    await storage.audit.append(records);
    const [row] = await backend.sql<{ event: string }>('SELECT event FROM audit_log WHERE seq = ?', [3]);
    const [authId] = auditEventRefs(row!.event);
    const [entry] = await backend.sql<{ value: string }>('SELECT value FROM audit_dictionary WHERE id = ?', [authId]);
    expect(JSON.parse(entry!.value)).toMatchObject({ task_id: 'tsk_2' });
    // The attacker makes tsk_2's reads look like another role's.
    await backend.sql('UPDATE audit_dictionary SET value = ? WHERE id = ?', [
      entry!.value.replace('"role":"enricher"', '"role":"auditor"'),
      authId,
    ]);
    // Seq 3 is the first record of tsk_2 (i = 2).
    expect(firstBreak(await storage.audit.range(1, 100))).toBe(3);
    // Deleted instead: the same.
    await backend.sql('DELETE FROM audit_dictionary WHERE id = ?', [authId]);
    expect(firstBreak(await storage.audit.range(1, 100))).toBe(3);
    await storage.close();
  });

  it('a deleted row is a break even where the next row derives its prev_hash', async () => {
    backend = await make();
    const records = chain(8);
    const storage = await backend.open();
    await storage.audit.append(records);
    await backend.sql('DELETE FROM audit_log WHERE seq = ?', [4]);
    const read = await storage.audit.range(1, 100);
    expect(read.map((r) => r.seq)).toEqual([1, 2, 3, 5, 6, 7, 8]);
    expect(read[3]!.prevHash).toBe('');
    expect(firstBreak(read)).toBe(5);
    await storage.close();
  });
});
