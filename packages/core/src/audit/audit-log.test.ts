import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditUnavailableError } from '../errors/errors.js';
import { AuditConflictError, type AuditRecord } from '../ports/storage.js';
import { ControllableSink, requestEvent, testSigner } from '../test-support/audit-fixtures.js';
import { MemoryAuditStore } from '../test-support/memory-audit-store.js';
import { auditCheckpointDigest } from './audit-checkpoint.js';
import { parseAuditFileLine } from './audit-compact-line.js';
import { AuditFileSink } from './audit-file-sink.js';
import { verifyAuditFile } from './audit-file-verify.js';
import { AUDIT_GENESIS_HASH, auditChainHash } from './audit-hash.js';
import { createAuditHmac } from './audit-hmac.js';
import { formatAuditRecordLine } from './audit-line.js';
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
      legacyCheckpoints: 0,
      lastSeq: 2,
      lastCheckpointSeq: 2,
      interval: { every: 1_000, intervalMs: 10_000 },
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
        .map((l) => parseAuditFileLine(l))
        .flatMap((l) => (l?.kind === 'record' ? [l.record.seq] : l?.kind === 'compact' ? [l.seq] : []));
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

  describe('observers', () => {
    it('see each acknowledged record once, in chain order, with its seq and hash — after its record() resolved', async () => {
      const store = new MemoryAuditStore();
      const { signer } = testSigner();
      const log = await AuditLog.open({ store, signer });
      const seen: { seq: number; hash: string; id: string | undefined }[] = [];
      let resolvedFirst = false;
      log.observe((batch) => {
        for (const o of batch) seen.push({ seq: o.seq, hash: o.hash, id: o.event.request_id });
        if (batch.some((o) => o.seq === 1)) expect(resolvedFirst).toBe(true);
      });
      const first = log.record(requestEvent(1)).then((r) => {
        resolvedFirst = true;
        return r;
      });
      const records = await Promise.all([first, log.record(requestEvent(2)), log.record(requestEvent(3))]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toEqual(records.map((r, i) => ({ seq: r.seq, hash: r.hash, id: `req-${i + 1}` })));
      await log.close();
    });

    it('never see a refused batch, and do see one only a durable file acknowledged', async () => {
      const store = new MemoryAuditStore();
      const file = new ControllableSink('file');
      const { signer } = testSigner();
      const log = await AuditLog.open({ store, signer, sinks: [file] });
      const seen: number[] = [];
      log.observe((batch) => seen.push(...batch.map((o) => o.seq)));
      store.failAppends = true;
      file.fail = true;
      await expect(log.record(requestEvent(1))).rejects.toBeInstanceOf(AuditUnavailableError);
      expect(seen).toEqual([]);
      file.fail = false;
      const kept = await log.record(requestEvent(2));
      expect(seen).toEqual([kept.seq]);
      store.failAppends = false;
      await log.close();
    });

    it('an observer that throws changes nothing for the log or the other observers', async () => {
      const store = new MemoryAuditStore();
      const { signer } = testSigner();
      const log = await AuditLog.open({ store, signer });
      const seen: number[] = [];
      log.observe(() => {
        throw new Error('broken observer');
      });
      const stop = log.observe((batch) => seen.push(...batch.map((o) => o.seq)));
      expect((await log.record(requestEvent(1))).seq).toBe(1);
      stop();
      expect((await log.record(requestEvent(2))).seq).toBe(2);
      expect(seen).toEqual([1]);
      await log.close();
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
    // No checkpoint may seal records the database does not have: at most seq 1 is sealed.
    expect((await log.checkpoint())?.seq).toBe(1);
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

describe('AuditLog: chained checkpoints at their interval', () => {
  it('seals exactly every N records even when one batch carries the chain past the boundary', async () => {
    const store = new MemoryAuditStore();
    const { signer, publicKeys } = testSigner();
    const log = await AuditLog.open({ store, signer, checkpointEvery: 10 });
    // 35 records in one tick: one batch, cut at each boundary.
    await Promise.all(Array.from({ length: 35 }, (_, i) => log.record(requestEvent(i))));
    expect(store.checkpointList.map((c) => c.seq)).toEqual([10, 20, 30]);
    await log.close();
    const cps = await store.checkpoints();
    expect(cps.map((c) => c.seq)).toEqual([10, 20, 30, 35]);
    // Each names the one before it, and carries the interval.
    expect(cps.map((c) => (c.version === 2 ? c.prevSeq : -1))).toEqual([0, 10, 20, 30]);
    expect(cps.every((c) => c.version === 2 && c.every === 10 && c.intervalMs === 10_000)).toBe(true);
    expect(cps[1]!.version === 2 && cps[1]!.prevDigest).toBe(auditCheckpointDigest(cps[0]!));
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, checkpoints: 4, lastSeq: 35 });
  });

  it('refuses records beyond the interval while no checkpoint can be written, and recovers', async () => {
    const store = new MemoryAuditStore();
    const { signer, publicKeys } = testSigner();
    const log = await AuditLog.open({ store, signer, checkpointEvery: 5, onSinkError: () => undefined });
    store.failCheckpoints = true;
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => log.record(requestEvent(i))));
    expect(results.map((r) => r.status)).toEqual([...Array(5).fill('fulfilled'), ...Array(3).fill('rejected')]);
    expect((results[5] as PromiseRejectedResult).reason).toBeInstanceOf(AuditUnavailableError);
    expect(store.records).toHaveLength(5);
    store.failCheckpoints = false;
    await expect(log.record(requestEvent(9))).resolves.toMatchObject({ seq: 6 });
    await log.close();
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, lastSeq: 6 });
  });

  it('acknowledges through the file while the database is down only up to the interval', async () => {
    const store = new MemoryAuditStore();
    const path = join(dir, 'audit.jsonl');
    const { signer, publicKeys } = testSigner();
    const log = await AuditLog.open({
      store,
      signer,
      checkpointEvery: 5,
      sinks: [await AuditFileSink.open({ path })],
      onSinkError: () => undefined,
    });
    await log.record(requestEvent(1));
    store.failAppends = true;
    store.failCheckpoints = true;
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => log.record(requestEvent(i + 2))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    expect(log.backlogSize).toBe(4);
    store.failAppends = false;
    store.failCheckpoints = false;
    await log.close();
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, lastSeq: 5 });
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: true, lastSeq: 5 });
  });

  it('two logs on one store (two nodes) keep one checkpoint chain within the interval', async () => {
    const store = new MemoryAuditStore();
    const { signer, publicKeys } = testSigner();
    const a = await AuditLog.open({ store, signer, checkpointEvery: 7 });
    const b = await AuditLog.open({ store, signer, checkpointEvery: 7 });
    for (let i = 0; i < 20; i++) {
      await Promise.all([a.record(requestEvent(i)), b.record(requestEvent(100 + i)), b.record(requestEvent(200 + i))]);
    }
    await a.close();
    await b.close();
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, events: 60, lastSeq: 60 });
  });
});

describe('AuditLog.open: signs nothing over a chain that is not what was sealed', () => {
  /** A closed log of n records with checkpoints every 10, on a memory store and a file. */
  async function written(n: number, options: { file?: boolean } = {}) {
    const store = new MemoryAuditStore();
    const path = join(dir, 'audit.jsonl');
    const { signer, publicKeys } = testSigner();
    const sinks = options.file === false ? [] : [await AuditFileSink.open({ path })];
    const log = await AuditLog.open({ store, signer, checkpointEvery: 10, sinks });
    for (let i = 0; i < n; i++) await log.record(requestEvent(i));
    await log.close();
    const reopen = async () =>
      AuditLog.open({
        store,
        signer,
        checkpointEvery: 10,
        sinks: options.file === false ? [] : [await AuditFileSink.open({ path })],
      });
    return { store, path, signer, publicKeys, reopen };
  }
  const refused = (detail: RegExp) => ({ code: 'CUSTOS_ERR_AUDIT_INTEGRITY', message: expect.stringMatching(detail) });

  it('refuses when the last checkpoint does not verify', async () => {
    const { store, reopen } = await written(25, { file: false });
    const last = store.checkpointList.at(-1)!;
    store.checkpointList[store.checkpointList.length - 1] = { ...last, signature: 'A'.repeat(86) };
    await expect(reopen()).rejects.toMatchObject(refused(/last checkpoint \(seq 25\) does not verify/));
  });

  it('refuses when the chain at the last checkpoint differs (rewritten under it)', async () => {
    const { store, reopen } = await written(25, { file: false });
    store.records[24] = { ...store.records[24]!, hash: 'f'.repeat(64) };
    await expect(reopen()).rejects.toMatchObject(refused(/at seq 25 differs from its signed checkpoint/));
  });

  it('refuses when the chain was cut below the last checkpoint', async () => {
    const { store, reopen } = await written(25, { file: false });
    store.records.splice(22);
    await expect(reopen()).rejects.toMatchObject(refused(/ends at seq 22, below its last checkpoint/));
  });

  it('refuses when the checkpoints were deleted and more records remain than may be unsealed', async () => {
    const { store, reopen } = await written(25, { file: false });
    store.checkpointList = [];
    const before = store.appendCalls;
    await expect(reopen()).rejects.toMatchObject(refused(/25 records follow the last checkpoint \(seq 0\)/));
    expect(store.checkpointList).toEqual([]);
    expect(store.appendCalls).toBe(before);
  });

  it('refuses when the trailing checkpoints were deleted and more than one interval follows the last', async () => {
    const { store, reopen } = await written(35, { file: false });
    store.checkpointList = store.checkpointList.filter((c) => c.seq <= 20);
    await expect(reopen()).rejects.toMatchObject(refused(/15 records follow the last checkpoint \(seq 20\)/));
  });

  it('refuses when the records after the last checkpoint do not chain from it', async () => {
    const { store, reopen } = await written(25, { file: false });
    store.checkpointList = store.checkpointList.filter((c) => c.seq <= 20);
    store.records[22] = { ...store.records[22]!, prevHash: 'a'.repeat(64) };
    await expect(reopen()).rejects.toMatchObject(refused(/do not chain from it/));
  });

  it('refuses when the file holds a checkpoint the database lacks (deleted, then the chain rewritten)', async () => {
    const { store, reopen } = await written(15);
    store.checkpointList = [];
    await expect(reopen()).rejects.toMatchObject(
      refused(/file sink holds a checkpoint at seq 15 that the database lacks/),
    );
    expect(store.checkpointList).toEqual([]);
  });

  it('refuses when the file and the database differ at the file’s last record', async () => {
    const store = new MemoryAuditStore();
    const path = join(dir, 'audit.jsonl');
    const { signer } = testSigner();
    const log = await AuditLog.open({
      store,
      signer,
      checkpointEvery: 10,
      sinks: [await AuditFileSink.open({ path })],
    });
    for (let i = 0; i < 13; i++) await log.record(requestEvent(i));
    // A crash: 11–13 are not sealed yet. Then the unsealed tail is rewritten in the database alone.
    const edited = { ...store.records[12]!, event: store.records[12]!.event.replace('allow', 'deny') };
    store.records[12] = { ...edited, hash: auditChainHash(edited.prevHash, edited.event) };
    await expect(
      AuditLog.open({ store, signer, checkpointEvery: 10, sinks: [await AuditFileSink.open({ path })] }),
    ).rejects.toMatchObject(refused(/differ at seq 13/));
    expect(store.checkpointList.map((c) => c.seq)).toEqual([10]);
  });

  it('refuses records in the file beyond the database that do not continue its chain', async () => {
    const { store, path, reopen } = await written(10);
    const forged = formatAuditRecordLine({
      seq: 11,
      ts: store.records[9]!.ts,
      prevHash: 'b'.repeat(64),
      hash: auditChainHash('b'.repeat(64), store.records[9]!.event),
      event: store.records[9]!.event,
    });
    await writeFile(path, `${forged}\n`, { flag: 'a' });
    await expect(reopen()).rejects.toMatchObject(refused(/after seq 10 that do not continue/));
    expect(store.records).toHaveLength(10);
  });

  it('refuses a file checkpoint that does not verify', async () => {
    const { path, reopen } = await written(15);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace(/"signature":"[^"]+"(?=[^\n]*\n$)/, `"signature":"${'B'.repeat(86)}"`));
    await expect(reopen()).rejects.toMatchObject(refused(/sink's last checkpoint \(seq 15\) does not verify/));
  });

  it('closes its sinks when it refuses to open', async () => {
    const { store, signer } = await written(25, { file: false });
    store.checkpointList = [];
    const sink = new ControllableSink('file');
    let closed = false;
    sink.close = async () => {
      closed = true;
    };
    await expect(AuditLog.open({ store, signer, checkpointEvery: 10, sinks: [sink] })).rejects.toMatchObject({
      code: 'CUSTOS_ERR_AUDIT_INTEGRITY',
    });
    expect(closed).toBe(true);
  });

  it('gives the file the checkpoint lines a crash cost it, so the file keeps verifying', async () => {
    const { store, path, signer, publicKeys } = await written(15);
    const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
    // The crash came between the last checkpoint's database write and its file write.
    expect(lines.at(-1)).toContain('"kind":"checkpoint"');
    await writeFile(path, `${lines.slice(0, -1).join('\n')}\n`);
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: true, checkpoints: 1 });
    const log = await AuditLog.open({
      store,
      signer,
      checkpointEvery: 10,
      sinks: [await AuditFileSink.open({ path })],
    });
    await log.record(requestEvent(99));
    await log.close();
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: true, lastSeq: 16, checkpoints: 3 });
  });
});

describe('AuditLog: tampering found while it runs', () => {
  it('fails closed when its last checkpoint vanishes from the database', async () => {
    const store = new MemoryAuditStore();
    const { signer } = testSigner();
    const failures: string[] = [];
    const log = await AuditLog.open({
      store,
      signer,
      checkpointEvery: 5,
      onIntegrityFailure: (e) => failures.push(e.code),
    });
    for (let i = 0; i < 6; i++) await log.record(requestEvent(i));
    expect(store.checkpointList.map((c) => c.seq)).toEqual([5]);
    store.checkpointList = [];
    await Promise.allSettled(Array.from({ length: 6 }, (_, i) => log.record(requestEvent(10 + i))));
    expect(failures).toEqual(['CUSTOS_ERR_AUDIT_INTEGRITY']);
    await expect(log.record(requestEvent(20))).rejects.toBeInstanceOf(AuditUnavailableError);
    expect(store.checkpointList).toEqual([]);
    await log.close();
    expect(store.checkpointList).toEqual([]);
  });

  it('fails closed when records it wrote vanish from the database', async () => {
    const store = new MemoryAuditStore();
    const { signer } = testSigner();
    const failures: string[] = [];
    const log = await AuditLog.open({ store, signer, onIntegrityFailure: (e) => failures.push(e.code) });
    for (let i = 0; i < 5; i++) await log.record(requestEvent(i));
    store.records.splice(3);
    await expect(log.record(requestEvent(9))).rejects.toBeInstanceOf(AuditUnavailableError);
    expect(failures).toEqual(['CUSTOS_ERR_AUDIT_INTEGRITY']);
    await log.close();
    expect(store.checkpointList).toEqual([]);
  });

  it('seals its own hash, not a record rewritten under it: the rewrite shows on verification', async () => {
    const store = new MemoryAuditStore();
    const { signer, publicKeys } = testSigner();
    const log = await AuditLog.open({ store, signer });
    for (let i = 0; i < 5; i++) await log.record(requestEvent(i));
    const edited = { ...store.records[4]!, event: store.records[4]!.event.replace('allow', 'deny') };
    store.records[4] = { ...edited, hash: auditChainHash(edited.prevHash, edited.event) };
    await log.close();
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({
      ok: false,
      seq: 5,
      problem: 'checkpoint-mismatch',
    });
  });
});
