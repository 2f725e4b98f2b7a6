import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage } from '@custos/storage';
import { describe, expect, it } from 'vitest';
import type { AuditStore } from '../ports/storage.js';
import { requestEvent, testSigner } from '../test-support/audit-fixtures.js';
import { MemoryAuditStore } from '../test-support/memory-audit-store.js';
import { AuditFileSink } from './audit-file-sink.js';
import { AuditLog } from './audit-log.js';
import { verifyAudit } from './audit-verify.js';

// Measurements, printed for the record; the assertions are only loose floors
// so a slow CI machine does not fail them.
const { signer } = testSigner();

async function writers(store: AuditStore, total: number, sinks: AuditFileSink[] = []): Promise<number> {
  const log = await AuditLog.open({ store, signer, sinks });
  const perWriter = total / 50;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: 50 }, async (_, w) => {
      for (let i = 0; i < perWriter; i++) await log.record(requestEvent(w * perWriter + i));
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await log.close();
  return total / seconds;
}

function report(label: string, perSecond: number): void {
  console.log(`${label}: ${Math.round(perSecond)} records/s, ${(1e6 / perSecond).toFixed(1)} µs/event`);
}

describe('audit performance', () => {
  it('50 concurrent writers on the in-memory store', async () => {
    const rate = await writers(new MemoryAuditStore(), 50_000);
    report('memory store, 50 writers', rate);
    expect(rate).toBeGreaterThan(2_000);
  });

  it('50 concurrent writers on SQLite (file, WAL, synchronous=FULL) and a fsynced JSON-lines file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custos-audit-perf-'));
    try {
      const storage = createStorage(`sqlite:${join(dir, 'custos.db')}`);
      await storage.migrate();
      const dbOnly = await writers(storage.audit, 20_000);
      report('sqlite file, 50 writers', dbOnly);
      const withFile = await writers(storage.audit, 20_000, [
        await AuditFileSink.open({ path: join(dir, 'audit.jsonl') }),
      ]);
      report('sqlite file + fsynced jsonl file, 50 writers', withFile);
      await storage.close();
      expect(dbOnly).toBeGreaterThan(1_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('verifies 100k events', async () => {
    const store = new MemoryAuditStore();
    const { signer, publicKeys } = testSigner();
    const log = await AuditLog.open({ store, signer });
    for (let chunk = 0; chunk < 100; chunk++) {
      await Promise.all(Array.from({ length: 1_000 }, (_, i) => log.record(requestEvent(chunk * 1_000 + i))));
    }
    await log.close();
    const start = process.hrtime.bigint();
    const result = await verifyAudit(store, { publicKeys });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    expect(result).toMatchObject({ ok: true, events: 100_000, checkpoints: 100 });
    console.log(`verify: 100000 events in ${seconds.toFixed(2)} s, ${Math.round(100_000 / seconds)} events/s`);
  });
});
