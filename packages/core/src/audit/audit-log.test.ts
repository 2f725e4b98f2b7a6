import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditUnavailableError } from '../errors/errors.js';
import { AuditConflictError, type AuditRecord } from '../ports/storage.js';
import { ControllableSink, requestEvent, testSigner } from '../test-support/audit-fixtures.js';
import { MemoryAuditStore } from '../test-support/memory-audit-store.js';
import { AuditFileSink } from './audit-file-sink.js';
import { verifyAuditFile } from './audit-file-verify.js';
import { AUDIT_GENESIS_HASH, auditChainHash } from './audit-hash.js';
import { createAuditHmac } from './audit-hmac.js';
import { AuditLog } from './audit-log.js';
import { verifyAudit } from './audit-verify.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-audit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('AuditLog', () => {
  it('chains records from the genesis hash with contiguous seqs', async () => {
    const store = new MemoryAuditStore();
    const { signer, publicKeys } = testSigner();
    const log = await AuditLog.open({ store, signer });
    const first = await log.record(requestEvent(1));
    const second = await log.record(requestEvent(2));
    expect(first.seq).toBe(1);
    expect(first.prevHash).toBe(AUDIT_GENESIS_HASH);
    expect(first.hash).toBe(auditChainHash(AUDIT_GENESIS_HASH, first.event));
    expect(second.seq).toBe(2);
    expect(second.prevHash).toBe(first.hash);
    expect(JSON.parse(first.event)).toMatchObject({ type: 'request', request_id: 'req-1', time: first.ts });
    expect(log.head).toEqual({ seq: 2, hash: second.hash });
    await log.close();
    expect(await verifyAudit(store, { publicKeys })).toEqual({
      ok: true,
      events: 2,
      checkpoints: 1,
      lastSeq: 2,
      lastCheckpointSeq: 2,
    });
  });

  it('group commit: records made in one tick are written with one append', async () => {
    const store = new MemoryAuditStore();
    const { signer } = testSigner();
    const log = await AuditLog.open({ store, signer });
    const records = await Promise.all(Array.from({ length: 50 }, (_, i) => log.record(requestEvent(i))));
    expect(store.appendCalls).toBe(1);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await log.close();
  });

  it('group commit: records arriving while a batch is written form the next batch', async () => {
    const store = new MemoryAuditStore();
    const { signer, publicKeys } = testSigner();
    const log = await AuditLog.open({ store, signer });
    // 20 writers each recording 25 events one after another.
    await Promise.all(
      Array.from({ length: 20 }, async (_, w) => {
        for (let i = 0; i < 25; i++) await log.record(requestEvent(w * 100 + i));
      }),
    );
    expect(store.records).toHaveLength(500);
    expect(store.appendCalls).toBeLessThan(100);
    await log.close();
    expect((await verifyAudit(store, { publicKeys })).ok).toBe(true);
  });

  it('continues the chain from the store head when reopened', async () => {
    const store = new MemoryAuditStore();
    const { signer, publicKeys } = testSigner();
    const a = await AuditLog.open({ store, signer });
    await a.record(requestEvent(1));
    await a.close();
    const b = await AuditLog.open({ store, signer });
    expect((await b.record(requestEvent(2))).seq).toBe(2);
    await b.close();
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, events: 2, checkpoints: 2 });
  });

  describe('fail-closed', () => {
    it('rejects every record of the batch when no sink records it, and keeps the head', async () => {
      const store = new MemoryAuditStore();
      const file = new ControllableSink('file');
      const { signer, publicKeys } = testSigner();
      const log = await AuditLog.open({ store, signer, sinks: [file] });
      const ok = await log.record(requestEvent(1));
      const headBefore = log.head;

      store.failAppends = true;
      file.fail = true;
      const results = await Promise.allSettled([log.record(requestEvent(2)), log.record(requestEvent(3))]);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        const reason = (r as PromiseRejectedResult).reason;
        expect(reason).toBeInstanceOf(AuditUnavailableError);
        expect(reason.code).toBe('CUSTOS_ERR_AUDIT_UNAVAILABLE');
        expect(reason.status).toBe(503);
      }
      expect(log.head).toEqual(headBefore);
      expect(log.backlogSize).toBe(0);

      store.failAppends = false;
      file.fail = false;
      const next = await log.record(requestEvent(4));
      expect(next.seq).toBe(2);
      expect(next.prevHash).toBe(ok.hash);
      await log.close();
      expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, events: 2 });
    });

    it('a non-durable sink alone never acknowledges', async () => {
      const store = new MemoryAuditStore();
      const stdout = new ControllableSink('stdout', false);
      const { signer } = testSigner();
      const log = await AuditLog.open({ store, signer, sinks: [stdout] });
      store.failAppends = true;
      await expect(log.record(requestEvent(1))).rejects.toBeInstanceOf(AuditUnavailableError);
      expect(log.head.seq).toBe(0);
      store.failAppends = false;
      await log.close();
    });

    it('a refused batch never reaches a non-durable sink, so no seq appears there twice (full disk)', async () => {
      const store = new MemoryAuditStore();
      // An audit file without fsync: not durable, and it has room while the database has none.
      const path = join(dir, 'audit.jsonl');
      const file = await AuditFileSink.open({ path, fsync: 'never' });
      const { signer, publicKeys } = testSigner();
      const log = await AuditLog.open({ store, signer, sinks: [file] });
      await log.record(requestEvent(1));
      store.failAppends = true;
      await expect(log.record(requestEvent(2))).rejects.toBeInstanceOf(AuditUnavailableError);
      await expect(log.record(requestEvent(3))).rejects.toBeInstanceOf(AuditUnavailableError);
      store.failAppends = false;
      // The refused events' seq (2) goes to the next acknowledged one.
      expect((await log.record(requestEvent(4))).seq).toBe(2);
      await log.close();
      const seqs = (await readFile(path, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { kind: string; seq: number })
        .filter((l) => l.kind === 'record')
        .map((l) => l.seq);
      expect(seqs).toEqual([1, 2]);
      expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: true, events: 2 });
    });

    it('refuses once the database backlog is full rather than leave a gap', async () => {
      const store = new MemoryAuditStore();
      const file = new ControllableSink('file');
      const { signer } = testSigner();
      const log = await AuditLog.open({ store, signer, sinks: [file], maxBacklog: 2 });
      store.failAppends = true;
      await log.record(requestEvent(1));
      await log.record(requestEvent(2));
      await expect(log.record(requestEvent(3))).rejects.toBeInstanceOf(AuditUnavailableError);
      expect(file.records).toHaveLength(2);
      store.failAppends = false;
      await log.close();
    });

    it('rejects after close', async () => {
      const { signer } = testSigner();
      const log = await AuditLog.open({ store: new MemoryAuditStore(), signer });
      await log.close();
      await expect(log.record(requestEvent(1))).rejects.toBeInstanceOf(AuditUnavailableError);
    });
  });

  it('acknowledges through the file while the database fails, then the database catches up with no gap', async () => {
    const store = new MemoryAuditStore();
    const path = join(dir, 'audit.jsonl');
    const file = await AuditFileSink.open({ path });
    const { signer, publicKeys } = testSigner();
    const errors: string[] = [];
    const log = await AuditLog.open({ store, signer, sinks: [file], onSinkError: (sink) => errors.push(sink) });
    await log.record(requestEvent(1));

    store.failAppends = true;
    const during = await Promise.all([2, 3, 4].map((i) => log.record(requestEvent(i))));
    expect(during.map((r) => r.seq)).toEqual([2, 3, 4]);
    expect(log.backlogSize).toBe(3);
    expect(store.records).toHaveLength(1);
    expect(errors).toContain('database');
    // No checkpoint may seal records the database does not have.
    expect(await log.checkpoint()).toBeUndefined();

    store.failAppends = false;
    const after = await log.record(requestEvent(5));
    expect(after.seq).toBe(5);
    expect(log.backlogSize).toBe(0);
    expect(store.records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(store.records.slice(1, 4)).toEqual(during);
    await log.close();
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, events: 5, lastCheckpointSeq: 5 });
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: true, events: 5 });
  });

  it('on reopen, gives the database the records only the file holds (crash while the database was down)', async () => {
    const store = new MemoryAuditStore();
    const path = join(dir, 'audit.jsonl');
    const { signer, publicKeys } = testSigner();
    const log = await AuditLog.open({ store, signer, sinks: [await AuditFileSink.open({ path })] });
    await log.record(requestEvent(1));
    store.failAppends = true;
    await log.record(requestEvent(2));
    await log.record(requestEvent(3));
    // Simulated crash: the log is dropped without close(); the database comes back.
    store.failAppends = false;
    const reopened = await AuditLog.open({ store, signer, sinks: [await AuditFileSink.open({ path })] });
    expect(store.records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect((await reopened.record(requestEvent(4))).seq).toBe(4);
    await reopened.close();
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, events: 4 });
  });

  it('on reopen, gives a file that fell behind the records the database has (crash between the two writes)', async () => {
    const store = new MemoryAuditStore();
    const path = join(dir, 'audit.jsonl');
    const { signer, publicKeys } = testSigner();
    const a = await AuditLog.open({ store, signer, sinks: [await AuditFileSink.open({ path })] });
    await a.record(requestEvent(1));
    await a.close();
    const b = await AuditLog.open({ store, signer });
    await b.record(requestEvent(2));
    await b.record(requestEvent(3));
    await b.close();
    const c = await AuditLog.open({ store, signer, sinks: [await AuditFileSink.open({ path })] });
    await c.record(requestEvent(4));
    await c.close();
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: true, events: 4 });
  });

  it('a new, empty file starts at the head rather than copying the history', async () => {
    const store = new MemoryAuditStore();
    const path = join(dir, 'audit.jsonl');
    const { signer, publicKeys } = testSigner();
    const a = await AuditLog.open({ store, signer });
    await a.record(requestEvent(1));
    await a.close();
    const b = await AuditLog.open({ store, signer, sinks: [await AuditFileSink.open({ path })] });
    await b.record(requestEvent(2));
    await b.close();
    expect(await verifyAuditFile(path, { publicKeys, partial: true })).toMatchObject({ ok: true, events: 1 });
  });

  describe('conflicts (another node appended)', () => {
    it('reloads the head, re-chains the batch and retries', async () => {
      const store = new MemoryAuditStore();
      const { signer, publicKeys } = testSigner();
      const a = await AuditLog.open({ store, signer });
      const b = await AuditLog.open({ store, signer });
      await a.record(requestEvent(1));
      const [r2, r3] = await Promise.all([b.record(requestEvent(2)), b.record(requestEvent(3))]);
      expect([r2?.seq, r3?.seq]).toEqual([2, 3]);
      expect(r2?.prevHash).toBe(store.records[0]?.hash);
      expect((await a.record(requestEvent(4))).seq).toBe(4);
      await a.close();
      await b.close();
      expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, events: 4 });
    });

    it('does not write twice records the store already holds (an append whose answer was lost)', async () => {
      const store = new MemoryAuditStore();
      const { signer, publicKeys } = testSigner();
      const log = await AuditLog.open({ store, signer });
      const realAppend = store.append.bind(store);
      let lose = true;
      store.append = async (records) => {
        await realAppend(records);
        if (lose) {
          lose = false;
          throw new Error('connection reset after commit');
        }
      };
      const file = new ControllableSink('file');
      file.fail = true;
      await expect(log.record(requestEvent(1))).rejects.toBeInstanceOf(AuditUnavailableError);
      // The head did not move, so this batch reuses seq 1, conflicts, and is re-chained after it.
      const r = await log.record(requestEvent(2));
      expect(r.seq).toBe(2);
      await log.close();
      expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, events: 2 });
    });

    it('gives up after a bounded number of retries (fail-closed)', async () => {
      const store = new MemoryAuditStore();
      const { signer } = testSigner();
      const log = await AuditLog.open({ store, signer, maxConflictRetries: 3 });
      let calls = 0;
      store.append = async () => {
        calls++;
        throw new AuditConflictError();
      };
      await expect(log.record(requestEvent(1))).rejects.toBeInstanceOf(AuditUnavailableError);
      expect(calls).toBe(4);
      await log.close();
    });
  });

  describe('checkpoints', () => {
    it('seals every N records and on close', async () => {
      const store = new MemoryAuditStore();
      const { signer, publicKeys } = testSigner();
      const log = await AuditLog.open({ store, signer, checkpointEvery: 10 });
      for (let i = 0; i < 25; i++) await log.record(requestEvent(i));
      expect(store.checkpointList.map((c) => c.seq)).toEqual([10, 20]);
      await log.close();
      expect(store.checkpointList.map((c) => c.seq)).toEqual([10, 20, 25]);
      expect(store.checkpointList.every((c) => c.keyId === signer.keyId)).toBe(true);
      expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, checkpoints: 3 });
    });

    it('seals after the interval when records arrived', async () => {
      const store = new MemoryAuditStore();
      const { signer } = testSigner();
      const log = await AuditLog.open({ store, signer, checkpointIntervalMs: 20 });
      await log.record(requestEvent(1));
      await new Promise((r) => setTimeout(r, 80));
      expect(store.checkpointList.map((c) => c.seq)).toEqual([1]);
      await log.close();
      expect(store.checkpointList).toHaveLength(1);
    });

    it('seals an unsealed tail when opened', async () => {
      const store = new MemoryAuditStore();
      const { signer } = testSigner();
      const log = await AuditLog.open({ store, signer, checkpointEvery: 1_000 });
      await log.record(requestEvent(1));
      // Crash: no close(), so no final checkpoint.
      expect(store.checkpointList).toHaveLength(0);
      const reopened = await AuditLog.open({ store, signer });
      expect(store.checkpointList.map((c) => c.seq)).toEqual([1]);
      await reopened.close();
    });

    it('a failing checkpoint write does not fail requests', async () => {
      const store = new MemoryAuditStore();
      const { signer } = testSigner();
      const errors: string[] = [];
      const log = await AuditLog.open({ store, signer, checkpointEvery: 1, onSinkError: (s) => errors.push(s) });
      store.failCheckpoints = true;
      await expect(log.record(requestEvent(1))).resolves.toMatchObject({ seq: 1 });
      expect(errors).toEqual(['database']);
      store.failCheckpoints = false;
      await log.close();
      expect(store.checkpointList.map((c) => c.seq)).toEqual([1]);
    });
  });

  describe('no secrets', () => {
    it('a value passed through hmac never appears in clear in the database or the file', async () => {
      const store = new MemoryAuditStore();
      const path = join(dir, 'audit.jsonl');
      const { signer } = testSigner();
      const hmac = createAuditHmac(randomBytes(32));
      const token = `cus_${randomBytes(24).toString('base64url')}`;
      const log = await AuditLog.open({ store, signer, sinks: [await AuditFileSink.open({ path })] });
      const record = await log.record(requestEvent(1, { data: { token: hmac(token) } }));
      await log.close();
      expect(JSON.parse(record.event).data.token).toBe(hmac(token));
      const everything = JSON.stringify(store.records) + JSON.stringify(store.checkpointList);
      expect(everything).not.toContain(token);
      expect(everything).toContain(hmac(token));
      expect(await readFile(path, 'utf8')).not.toContain(token);
    });

    it('refuses a clear value in data, before anything is written', async () => {
      const store = new MemoryAuditStore();
      const { signer } = testSigner();
      const log = await AuditLog.open({ store, signer });
      const token = `cus_${randomBytes(24).toString('base64url')}`;
      await expect(log.record(requestEvent(1, { data: { token } }))).rejects.toThrow(TypeError);
      expect(store.records).toHaveLength(0);
      await log.close();
    });
  });

  it('stamps the time itself and keeps ts equal to the event time', async () => {
    const store = new MemoryAuditStore();
    const { signer } = testSigner();
    const log = await AuditLog.open({ store, signer, now: () => new Date('2030-01-02T03:04:05.678Z') });
    const r: AuditRecord = await log.record(requestEvent(1));
    expect(r.ts).toBe('2030-01-02T03:04:05.678Z');
    expect(JSON.parse(r.event).time).toBe(r.ts);
    await log.close();
  });
});
