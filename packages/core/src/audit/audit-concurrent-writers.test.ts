import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage } from '@custos/storage';
import { describe, expect, it } from 'vitest';
import type { AuditStore } from '../ports/storage.js';
import { requestEvent, testSigner } from '../test-support/audit-fixtures.js';
import { MemoryAuditStore } from '../test-support/memory-audit-store.js';
import { AuditFileSink } from './audit-file-sink.js';
import { verifyAuditFile } from './audit-file-verify.js';
import { AuditLog } from './audit-log.js';
import { verifyAudit } from './audit-verify.js';

// The audit log under the load the benchmark puts on it (bench/core.bench.mjs:
// 50 concurrent writers, 100,000 events verified), checked for what must hold
// whatever the machine's speed: every acknowledged event is recorded exactly
// once, in one chain its checkpoints seal. Rates are measured by `npm run
// bench`, not asserted here.
const { signer, publicKeys } = testSigner();

/** 50 writers, `total` events; returns the request ids of the events whose writes were acknowledged. */
async function writers(store: AuditStore, total: number, sinks: AuditFileSink[] = []): Promise<string[]> {
  const log = await AuditLog.open({ store, signer, publicKeys, sinks });
  const perWriter = total / 50;
  const acknowledged: string[] = [];
  await Promise.all(
    Array.from({ length: 50 }, async (_, w) => {
      for (let i = 0; i < perWriter; i++) {
        await log.record(requestEvent(w * perWriter + i));
        acknowledged.push(`req-${w * perWriter + i}`);
      }
    }),
  );
  await log.close();
  return acknowledged;
}

async function recordedIds(store: AuditStore, from: number): Promise<string[]> {
  const head = await store.head();
  const records = await store.range(from, head!.seq);
  return records
    .map((r) => (JSON.parse(r.event) as { request_id?: string }).request_id)
    .filter((id) => id !== undefined) as string[];
}

describe('audit log with 50 concurrent writers', () => {
  it('records every acknowledged event once, in one verifiable chain (in-memory store)', async () => {
    const store = new MemoryAuditStore();
    const acknowledged = await writers(store, 10_000);
    const ids = await recordedIds(store, 1);
    expect(ids.length).toBe(10_000);
    expect(new Set(ids)).toEqual(new Set(acknowledged));
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, events: 10_000, checkpoints: 10 });
  });

  it('does the same on SQLite and a fsynced JSON-lines file, and the file verifies on its own', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custos-audit-writers-'));
    try {
      for (const withFile of [false, true]) {
        const storage = createStorage(`sqlite:${join(dir, `custos-${withFile}.db`)}`);
        await storage.migrate();
        const filePath = join(dir, 'audit.jsonl');
        const acknowledged = await writers(
          storage.audit,
          2_000,
          withFile ? [await AuditFileSink.open({ path: filePath })] : [],
        );
        const ids = await recordedIds(storage.audit, 1);
        expect(ids.length).toBe(2_000);
        expect(new Set(ids)).toEqual(new Set(acknowledged));
        expect(await verifyAudit(storage.audit, { publicKeys })).toMatchObject({ ok: true, events: 2_000 });
        await storage.close();
        // The file holds the same chain, which verifies offline on its own.
        if (withFile)
          expect(await verifyAuditFile(filePath, { publicKeys })).toMatchObject({ ok: true, lastSeq: 2_000 });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('verifies 100,000 events and their 100 checkpoints', async () => {
    const store = new MemoryAuditStore();
    const log = await AuditLog.open({ store, signer, publicKeys });
    for (let chunk = 0; chunk < 100; chunk++) {
      await Promise.all(Array.from({ length: 1_000 }, (_, i) => log.record(requestEvent(chunk * 1_000 + i))));
    }
    await log.close();
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, events: 100_000, checkpoints: 100 });
  });
});
