import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../ports/storage.js';
import { requestEvent, testSigner } from '../test-support/audit-fixtures.js';
import { MemoryAuditStore } from '../test-support/memory-audit-store.js';
import { signAuditCheckpoint } from './audit-checkpoint.js';
import { AuditFileSink } from './audit-file-sink.js';
import { verifyAuditFile } from './audit-file-verify.js';
import { auditChainHash } from './audit-hash.js';
import { formatAuditRecordLine } from './audit-line.js';
import { AuditLog } from './audit-log.js';
import { exportAuditSince, tailAudit } from './audit-read.js';
import { verifyAudit, verifyAuditChain } from './audit-verify.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-audit-verify-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 30 records, checkpoints at 10, 20 and 30, also written to a file. */
async function sealedChain() {
  const store = new MemoryAuditStore();
  const path = join(dir, 'audit.jsonl');
  const { signer, publicKeys } = testSigner();
  const log = await AuditLog.open({ store, signer, checkpointEvery: 10, sinks: [await AuditFileSink.open({ path })] });
  for (let i = 1; i <= 30; i++) await log.record(requestEvent(i));
  await log.close();
  return { store, path, signer, publicKeys };
}

/** Recomputes hashes from index `from` on, as an attacker with write access would. */
function rechainFrom(records: AuditRecord[], from: number): void {
  for (let i = from; i < records.length; i++) {
    const prevHash = i === 0 ? records[0]!.prevHash : records[i - 1]!.hash;
    const r = records[i]!;
    records[i] = { ...r, prevHash, hash: auditChainHash(prevHash, r.event) };
  }
}

function editEvent(r: AuditRecord): AuditRecord {
  return { ...r, event: r.event.replace('"decision":"allow"', '"decision":"deny"') };
}

describe('verifyAudit', () => {
  it('reports OK with counts for an intact chain', async () => {
    const { store, publicKeys } = await sealedChain();
    expect(await verifyAudit(store, { publicKeys, batchSize: 7 })).toEqual({
      ok: true,
      events: 30,
      checkpoints: 3,
      lastSeq: 30,
      lastCheckpointSeq: 30,
    });
  });

  it('reports OK for an empty chain', async () => {
    expect(await verifyAudit(new MemoryAuditStore(), { publicKeys: new Map() })).toMatchObject({
      ok: true,
      events: 0,
      lastSeq: 0,
    });
  });

  it('altered event text → altered at that seq', async () => {
    const { store, publicKeys } = await sealedChain();
    store.records[14] = editEvent(store.records[14]!);
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({
      ok: false,
      seq: 15,
      problem: 'altered',
      events: 14,
    });
  });

  it('altered hash → altered at that seq', async () => {
    const { store, publicKeys } = await sealedChain();
    store.records[4] = { ...store.records[4]!, hash: 'f'.repeat(64) };
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 5, problem: 'altered' });
  });

  it('altered event with its own hash recomputed → broken link at the next seq', async () => {
    const { store, publicKeys } = await sealedChain();
    const edited = editEvent(store.records[14]!);
    store.records[14] = { ...edited, hash: auditChainHash(edited.prevHash, edited.event) };
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 16, problem: 'broken' });
  });

  it('whole chain rewritten after an edit → checkpoint mismatch', async () => {
    const { store, publicKeys } = await sealedChain();
    store.records[14] = editEvent(store.records[14]!);
    rechainFrom(store.records, 14);
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({
      ok: false,
      seq: 20,
      problem: 'checkpoint-mismatch',
    });
  });

  it('a record deleted in the middle → missing', async () => {
    const { store, publicKeys } = await sealedChain();
    store.records.splice(11, 1);
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 12, problem: 'missing' });
  });

  it('the first record deleted → missing at 1', async () => {
    const { store, publicKeys } = await sealedChain();
    store.records.shift();
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 1, problem: 'missing' });
  });

  it('a record deleted and the rest renumbered → broken', async () => {
    const { store, publicKeys } = await sealedChain();
    store.records.splice(11, 1);
    store.records = store.records.map((r, i) => ({ ...r, seq: i + 1 }));
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 12, problem: 'broken' });
  });

  it('two records reordered (seqs swapped) → broken', async () => {
    const { store, publicKeys } = await sealedChain();
    const a = store.records[7]!;
    const b = store.records[8]!;
    store.records[7] = { ...b, seq: a.seq };
    store.records[8] = { ...a, seq: b.seq };
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 8, problem: 'broken' });
  });

  it('truncated below the last checkpoint → truncated at the first missing seq', async () => {
    const { store, publicKeys } = await sealedChain();
    store.records.splice(25);
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 26, problem: 'truncated' });
  });

  it('truncated with its checkpoints removed too → still caught by an earlier checkpoint only if it covers the cut', async () => {
    const { store, publicKeys } = await sealedChain();
    store.records.splice(25);
    store.checkpointList = store.checkpointList.filter((c) => c.seq <= 20);
    // The documented limit: records after the last surviving checkpoint can be dropped unnoticed.
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: true, lastSeq: 25, lastCheckpointSeq: 20 });
  });

  it('a checkpoint forged with another key under the trusted key id → bad-signature', async () => {
    const { store, signer, publicKeys } = await sealedChain();
    const { privateKey } = generateKeyPairSync('ed25519');
    const last = store.records[29]!;
    store.checkpointList[2] = signAuditCheckpoint({ keyId: signer.keyId, privateKey }, last.seq, last.hash, last.ts);
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 30, problem: 'bad-signature' });
  });

  it('a checkpoint with an edited hash → bad-signature', async () => {
    const { store, publicKeys } = await sealedChain();
    store.checkpointList[0] = { ...store.checkpointList[0]!, hash: 'a'.repeat(64) };
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 10, problem: 'bad-signature' });
  });

  it('a forged checkpoint beyond the end → bad-signature, not truncated', async () => {
    const { store, signer, publicKeys } = await sealedChain();
    const { privateKey } = generateKeyPairSync('ed25519');
    store.checkpointList.push(signAuditCheckpoint({ keyId: signer.keyId, privateKey }, 99, 'b'.repeat(64), 'x'));
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 99, problem: 'bad-signature' });
  });

  it('a checkpoint by an unknown key → unknown-key', async () => {
    const { store } = await sealedChain();
    expect(await verifyAudit(store, { publicKeys: testSigner().publicKeys })).toMatchObject({
      ok: false,
      seq: 10,
      problem: 'unknown-key',
    });
  });

  it('a non-canonical event with a consistent chain → malformed', async () => {
    const { store, publicKeys } = await sealedChain();
    store.records[29] = { ...store.records[29]!, event: store.records[29]!.event.replace('{', '{ ') };
    rechainFrom(store.records, 29);
    store.checkpointList = store.checkpointList.slice(0, 2);
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 30, problem: 'malformed' });
  });

  it('a ts that differs from the event time → malformed', async () => {
    const { store, publicKeys } = await sealedChain();
    store.records[3] = { ...store.records[3]!, ts: '1999-01-01T00:00:00.000Z' };
    expect(await verifyAudit(store, { publicKeys })).toMatchObject({ ok: false, seq: 4, problem: 'malformed' });
  });

  it('verifyAuditChain accepts a partial chain only when asked', async () => {
    const { store, publicKeys } = await sealedChain();
    const tail = store.records.slice(12);
    expect(await verifyAuditChain(tail, store.checkpointList, { publicKeys })).toMatchObject({
      ok: false,
      seq: 1,
      problem: 'missing',
    });
    expect(await verifyAuditChain(tail, store.checkpointList, { publicKeys, partial: true })).toMatchObject({
      ok: true,
      events: 18,
      checkpoints: 3,
    });
  });
});

describe('verifyAuditFile', () => {
  async function lines(path: string): Promise<string[]> {
    return (await readFile(path, 'utf8')).split('\n').filter(Boolean);
  }
  async function save(path: string, ls: string[]): Promise<void> {
    await writeFile(path, `${ls.join('\n')}\n`);
  }
  const seqOf = (line: string) => JSON.parse(line).seq as number;
  const isRecord = (line: string) => JSON.parse(line).kind === 'record';

  it('verifies the file sink output offline, checkpoints included', async () => {
    const { path, publicKeys } = await sealedChain();
    expect(await verifyAuditFile(path, { publicKeys })).toEqual({
      ok: true,
      events: 30,
      checkpoints: 3,
      lastSeq: 30,
      lastCheckpointSeq: 30,
    });
  });

  it('an edited event line → altered', async () => {
    const { path, publicKeys } = await sealedChain();
    const ls = await lines(path);
    const i = ls.findIndex((l) => isRecord(l) && seqOf(l) === 7);
    ls[i] = ls[i]!.replace('allow', 'deny');
    await save(path, ls);
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: false, seq: 7, problem: 'altered' });
  });

  it('a deleted line → missing', async () => {
    const { path, publicKeys } = await sealedChain();
    const ls = (await lines(path)).filter((l) => !(isRecord(l) && seqOf(l) === 3));
    await save(path, ls);
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: false, seq: 3, problem: 'missing' });
  });

  it('swapped lines → missing at the first seq out of place', async () => {
    const { path, publicKeys } = await sealedChain();
    const ls = await lines(path);
    const i = ls.findIndex((l) => isRecord(l) && seqOf(l) === 4);
    expect(seqOf(ls[i + 1]!)).toBe(5);
    [ls[i], ls[i + 1]] = [ls[i + 1]!, ls[i]!];
    await save(path, ls);
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: false, seq: 4, problem: 'missing' });
  });

  it('a line repeated → out-of-order', async () => {
    const { path, publicKeys } = await sealedChain();
    const ls = await lines(path);
    const i = ls.findIndex((l) => isRecord(l) && seqOf(l) === 4);
    ls.splice(i + 1, 0, ls[i]!);
    await save(path, ls);
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: false, seq: 4, problem: 'out-of-order' });
  });

  it('a line that is not an audit line → malformed', async () => {
    const { path, publicKeys } = await sealedChain();
    const ls = await lines(path);
    ls.splice(5, 0, 'not json');
    await save(path, ls);
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: false, problem: 'malformed' });
  });

  it('a truncated file → truncated (its last checkpoint line survives elsewhere)', async () => {
    const { path, publicKeys } = await sealedChain();
    const ls = await lines(path);
    const kept = ls.filter((l) => !isRecord(l) || seqOf(l) <= 22);
    await save(path, kept);
    expect(await verifyAuditFile(path, { publicKeys })).toMatchObject({ ok: false, seq: 23, problem: 'truncated' });
  });

  it('an export since a time verifies with partial', async () => {
    const { store, publicKeys } = await sealedChain();
    const since = store.records[20]!.ts;
    const exported: string[] = [];
    for await (const r of exportAuditSince(store, since, { batchSize: 4 })) exported.push(formatAuditRecordLine(r));
    const path = join(dir, 'export.jsonl');
    await save(path, exported);
    const first = JSON.parse(exported[0]!).seq as number;
    expect(first).toBeLessThanOrEqual(21);
    expect(await verifyAuditFile(path, { publicKeys, partial: true })).toMatchObject({ ok: true, lastSeq: 30 });
  });
});

describe('reading', () => {
  it('tailAudit yields the last n records ascending', async () => {
    const { store } = await sealedChain();
    const seqs: number[] = [];
    for await (const r of tailAudit(store, 5)) seqs.push(r.seq);
    expect(seqs).toEqual([26, 27, 28, 29, 30]);
    const all: number[] = [];
    for await (const r of tailAudit(store, 100)) all.push(r.seq);
    expect(all).toHaveLength(30);
    for await (const _ of tailAudit(new MemoryAuditStore(), 5)) throw new Error('nothing expected');
  });

  it('exportAuditSince yields every record from the first at or after the time', async () => {
    const store = new MemoryAuditStore();
    const { signer } = testSigner();
    let t = Date.parse('2030-01-01T00:00:00.000Z');
    const tick = () => {
      t += 1000;
      return new Date(t);
    };
    const log = await AuditLog.open({ store, signer, now: tick });
    for (let i = 1; i <= 12; i++) await log.record(requestEvent(i));
    await log.close();
    const seqs: number[] = [];
    for await (const r of exportAuditSince(store, '2030-01-01T00:00:05Z', { batchSize: 3 })) seqs.push(r.seq);
    expect(seqs[0]).toBe(store.records.find((r) => r.ts >= '2030-01-01T00:00:05.000Z')!.seq);
    expect(seqs.at(-1)).toBe(12);
    const none: number[] = [];
    for await (const r of exportAuditSince(store, '2031-01-01T00:00:00Z')) none.push(r.seq);
    expect(none).toEqual([]);
    await expect(exportAuditSince(store, 'yesterday').next()).rejects.toThrow(RangeError);
  });
});
