import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage } from '@custos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestEvent, signLegacyCheckpoint, testSigner } from '../test-support/audit-fixtures.js';
import { AuditFileSink } from './audit-file-sink.js';
import { verifyAuditFile } from './audit-file-verify.js';
import { AUDIT_EMPTY_HEAD, chainAuditRecords } from './audit-hash.js';
import { AuditLog } from './audit-log.js';
import { tailAudit } from './audit-read.js';
import { verifyAudit } from './audit-verify.js';
import { canonicalJson } from './canonical-json.js';

// Integration: the audit log on the real SQLite adapter of @custos/storage.
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-audit-sqlite-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('AuditLog on SQLite', () => {
  it('group-commits concurrent writers, seals checkpoints and verifies', async () => {
    const storage = createStorage('sqlite::memory:');
    await storage.migrate();
    const { signer, publicKeys } = testSigner();
    const path = join(dir, 'audit.jsonl');
    const log = await AuditLog.open({
      store: storage.audit,
      signer,
      checkpointEvery: 100,
      sinks: [await AuditFileSink.open({ path })],
    });
    await Promise.all(
      Array.from({ length: 20 }, async (_, w) => {
        for (let i = 0; i < 30; i++) await log.record(requestEvent(w * 100 + i));
      }),
    );
    await log.close();
    const report = await verifyAudit(storage.audit, { publicKeys, batchSize: 64 });
    expect(report).toMatchObject({ ok: true, events: 600, lastSeq: 600, lastCheckpointSeq: 600 });
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: true, events: 600 });
    const tail: number[] = [];
    for await (const r of tailAudit(storage.audit, 3)) tail.push(r.seq);
    expect(tail).toEqual([598, 599, 600]);
    await storage.close();
  });

  it('two logs on one database (two nodes) re-chain on conflict and keep one valid chain', async () => {
    const storage = createStorage(`sqlite:${join(dir, 'custos.db')}`);
    await storage.migrate();
    const { signer, publicKeys } = testSigner();
    const a = await AuditLog.open({ store: storage.audit, signer });
    const b = await AuditLog.open({ store: storage.audit, signer });
    for (let i = 0; i < 10; i++) {
      await Promise.all([a.record(requestEvent(i)), b.record(requestEvent(100 + i))]);
    }
    await a.close();
    await b.close();
    expect(await verifyAudit(storage.audit, { publicKeys })).toMatchObject({ ok: true, events: 20 });
    await storage.close();
  });

  it('upgrades a chain with legacy (v1) checkpoints: the first chained checkpoint names the last legacy one', async () => {
    const storage = createStorage(`sqlite:${join(dir, 'custos.db')}`);
    await storage.migrate();
    const { signer, publicKeys } = testSigner();
    // As an earlier version left it: 45 records, legacy checkpoints at 20 and 37, an unsealed tail of 8.
    const items = Array.from({ length: 45 }, (_, i) => {
      const ts = new Date(Date.UTC(2029, 0, 1, 0, 0, i)).toISOString();
      return { ts, event: canonicalJson({ ...requestEvent(i), time: ts }) };
    });
    const records = chainAuditRecords(AUDIT_EMPTY_HEAD, items);
    await storage.audit.append(records);
    for (const seq of [20, 37]) await storage.audit.appendCheckpoint(signLegacyCheckpoint(signer, records[seq - 1]!));

    const log = await AuditLog.open({ store: storage.audit, signer, checkpointEvery: 10 });
    const anchor = await storage.audit.lastCheckpoint();
    expect(anchor).toMatchObject({ version: 2, seq: 45, prevSeq: 37 });
    for (let i = 0; i < 25; i++) await log.record(requestEvent(100 + i));
    await log.close();
    expect(await verifyAudit(storage.audit, { publicKeys, defaultEvery: 10 })).toMatchObject({
      ok: true,
      events: 70,
      legacyCheckpoints: 2,
      checkpoints: 6,
    });
    await storage.close();
  });
});
