import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditCheckpoint, AuditRecord } from '../ports/storage.js';
import { requestEvent, signLegacyCheckpoint, testSigner } from '../test-support/audit-fixtures.js';
import { MemoryAuditStore } from '../test-support/memory-audit-store.js';
import {
  AUDIT_CHECKPOINT_GENESIS,
  type AuditSigner,
  auditCheckpointDigest,
  auditCheckpointLink,
  signAuditCheckpoint,
} from './audit-checkpoint.js';
import { AuditFileLineReader, parseAuditFileLine } from './audit-compact-line.js';
import { AuditFileSink } from './audit-file-sink.js';
import { verifyAuditFile } from './audit-file-verify.js';
import { AUDIT_EMPTY_HEAD, AUDIT_GENESIS_HASH, auditChainHash, chainAuditRecords } from './audit-hash.js';
import { formatAuditRecordLine } from './audit-line.js';
import { AuditLog } from './audit-log.js';
import { exportAuditSince, tailAudit } from './audit-read.js';
import { type AuditChainVerifyOptions, verifyAudit, verifyAuditChain } from './audit-verify.js';
import { canonicalJson } from './canonical-json.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-audit-verify-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const interval = { every: 10, intervalMs: 10_000 };

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
      legacyCheckpoints: 0,
      lastSeq: 30,
      lastCheckpointSeq: 30,
      interval: { every: 10, intervalMs: 10_000 },
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
    const prev = { seq: 20, digest: auditCheckpointDigest(store.checkpointList[1]!) };
    store.checkpointList[2] = signAuditCheckpoint({ keyId: signer.keyId, privateKey }, last, prev, interval);
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
    const prev = { seq: 30, digest: auditCheckpointDigest(store.checkpointList[2]!) };
    const forged = { seq: 99, hash: 'b'.repeat(64), ts: 'x' };
    store.checkpointList.push(signAuditCheckpoint({ keyId: signer.keyId, privateKey }, forged, prev, interval));
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
  // The file sink writes compact record lines ({"s":seq,"h":…,"e":{…}}) and dictionary lines.
  const seqOf = (line: string) => {
    const v = JSON.parse(line);
    return (v.seq ?? v.s) as number;
  };
  const isRecord = (line: string) => {
    const v = JSON.parse(line);
    return v.kind === 'record' || v.e !== undefined;
  };

  it('verifies the file sink output offline, checkpoints included', async () => {
    const { path, publicKeys } = await sealedChain();
    expect(await verifyAuditFile(path, { publicKeys })).toEqual({
      ok: true,
      events: 30,
      checkpoints: 3,
      legacyCheckpoints: 0,
      lastSeq: 30,
      lastCheckpointSeq: 30,
      interval: { every: 10, intervalMs: 10_000 },
    });
  });

  it('an edited event line → altered', async () => {
    const { path, publicKeys } = await sealedChain();
    const ls = await lines(path);
    const i = ls.findIndex((l) => isRecord(l) && seqOf(l) === 7);
    const line = JSON.parse(ls[i]!);
    expect(line.e.v).toBe(1);
    // The compact event's decision: absent is "allow".
    line.e.d = 'deny';
    ls[i] = JSON.stringify(line);
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
    const j = ls.findIndex((l) => isRecord(l) && seqOf(l) === 5);
    [ls[i], ls[j]] = [ls[j]!, ls[i]!];
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

/** n well-formed records, as a writer chains them. */
function plainChain(n: number): AuditRecord[] {
  const items = Array.from({ length: n }, (_, i) => {
    const ts = new Date(Date.UTC(2030, 0, 1, 0, 0, 0, i)).toISOString();
    return { ts, event: canonicalJson({ ...requestEvent(i + 1), time: ts }) };
  });
  return chainAuditRecords(AUDIT_EMPTY_HEAD, items);
}

/** Checkpoints at `seqs`: legacy (v1) up to `legacyUpTo`, chained (v2) after, as the writers sign them. */
function sealAt(
  records: AuditRecord[],
  seqs: number[],
  signer: AuditSigner,
  options: { every?: number; legacyUpTo?: number } = {},
): AuditCheckpoint[] {
  const out: AuditCheckpoint[] = [];
  let prev = AUDIT_CHECKPOINT_GENESIS;
  for (const seq of seqs) {
    const r = records[seq - 1]!;
    const cp =
      seq <= (options.legacyUpTo ?? 0)
        ? signLegacyCheckpoint(signer, r)
        : signAuditCheckpoint(signer, r, prev, { every: options.every ?? 10, intervalMs: 10_000 });
    out.push(cp);
    prev = auditCheckpointLink(cp);
  }
  return out;
}

describe('chained checkpoints (v2)', () => {
  const { signer, publicKeys } = testSigner();
  const verify = (records: AuditRecord[], cps: AuditCheckpoint[], extra: Partial<AuditChainVerifyOptions> = {}) =>
    verifyAuditChain(records, cps, { publicKeys, defaultEvery: 10, ...extra });

  it('a chain sealed within its interval verifies, with the interval it was signed with', async () => {
    const records = plainChain(35);
    expect(await verify(records, sealAt(records, [10, 20, 30, 35], signer))).toEqual({
      ok: true,
      events: 35,
      checkpoints: 4,
      legacyCheckpoints: 0,
      lastSeq: 35,
      lastCheckpointSeq: 35,
      interval: { every: 10, intervalMs: 10_000 },
    });
  });

  it('a middle checkpoint deleted → checkpoint-missing at its seq', async () => {
    const records = plainChain(35);
    const cps = sealAt(records, [10, 20, 30, 35], signer).filter((c) => c.seq !== 20);
    expect(await verify(records, cps)).toMatchObject({ ok: false, seq: 20, problem: 'checkpoint-missing', events: 19 });
  });

  it('the first checkpoint deleted → checkpoint-missing at its seq', async () => {
    const records = plainChain(35);
    const cps = sealAt(records, [10, 20, 30, 35], signer).filter((c) => c.seq !== 10);
    expect(await verify(records, cps)).toMatchObject({ ok: false, seq: 10, problem: 'checkpoint-missing' });
  });

  it('every checkpoint deleted → checkpoint-missing once the chain is longer than twice the interval', async () => {
    const records = plainChain(35);
    expect(await verify(records, [])).toMatchObject({ ok: false, seq: 21, problem: 'checkpoint-missing' });
    // The documented limit: a chain no longer than that, stripped of its checkpoints, is indistinguishable from a young one.
    expect(await verify(records.slice(0, 20), [])).toMatchObject({ ok: true, checkpoints: 0 });
  });

  it('the trailing checkpoints deleted → checkpoint-missing when more than one interval follows the last', async () => {
    const records = plainChain(35);
    const cps = sealAt(records, [10, 20, 30, 35], signer).filter((c) => c.seq <= 20);
    expect(await verify(records, cps)).toMatchObject({ ok: false, seq: 31, problem: 'checkpoint-missing' });
    // Within one interval of the last checkpoint the chain alone cannot tell (the documented limit).
    expect(await verify(records, sealAt(records, [10, 20, 30, 35], signer).slice(0, 3))).toMatchObject({ ok: true });
  });

  it('checkpoints further apart than their signed interval → checkpoint-missing where the interval ran out', async () => {
    const records = plainChain(35);
    const cps = sealAt(records, [10, 25, 35], signer);
    expect(await verify(records, cps)).toMatchObject({ ok: false, seq: 21, problem: 'checkpoint-missing' });
  });

  it('the same checkpoint twice (a line written again) counts once; two different ones at a seq → checkpoint-broken', async () => {
    const records = plainChain(20);
    const cps = sealAt(records, [10, 20], signer);
    expect(await verify(records, [...cps, cps[1]!])).toMatchObject({ ok: true, checkpoints: 2 });
    const other = signAuditCheckpoint(signer, records[19]!, auditCheckpointLink(cps[0]!), { every: 11, intervalMs: 1 });
    expect(await verify(records, [...cps, other])).toMatchObject({ ok: false, seq: 20, problem: 'checkpoint-broken' });
  });

  it('a looser interval cannot be claimed: an edited every or intervalMs breaks the signature', async () => {
    const records = plainChain(35);
    const cps = sealAt(records, [10, 25, 35], signer).map((c) =>
      c.version === 2 ? { ...c, every: 100, intervalMs: 3_600_000 } : c,
    );
    expect(await verify(records, cps)).toMatchObject({ ok: false, seq: 10, problem: 'bad-signature' });
  });

  it('a checkpoint that names another predecessor than the one before it → checkpoint-broken', async () => {
    const records = plainChain(30);
    const cps = sealAt(records, [10, 20, 30], signer);
    // Signed with the real key (an attacker cannot), but naming seq 10 while seq 20 is present.
    cps[2] = signAuditCheckpoint(signer, records[29]!, auditCheckpointLink(cps[0]!), { every: 20, intervalMs: 10_000 });
    expect(await verify(records, cps)).toMatchObject({ ok: false, seq: 30, problem: 'checkpoint-broken' });
    // Or the right seq with the wrong digest (a different checkpoint at seq 20).
    cps[2] = signAuditCheckpoint(signer, records[29]!, { seq: 20, digest: 'e'.repeat(64) }, interval);
    expect(await verify(records, cps)).toMatchObject({ ok: false, seq: 30, problem: 'checkpoint-broken' });
  });

  it('verifies from an anchor checkpoint (an archive start): records after it, the next checkpoint naming it', async () => {
    const records = plainChain(35);
    const cps = sealAt(records, [10, 20, 30, 35], signer);
    const after = records.slice(20);
    expect(await verify(after, cps, { anchor: cps[1]! })).toMatchObject({
      ok: true,
      events: 15,
      checkpoints: 2,
      lastSeq: 35,
    });
    // An anchor that the chain does not continue is refused.
    expect(await verify(after, cps, { anchor: cps[0]! })).toMatchObject({ ok: false, seq: 11, problem: 'missing' });
    const forged = { ...cps[1]!, hash: 'c'.repeat(64) };
    expect(await verify(after, cps, { anchor: forged })).toMatchObject({ ok: false, problem: 'bad-signature' });
  });

  it('a partial copy (a file sink added later) verifies from its first checkpoint on', async () => {
    const records = plainChain(35);
    const cps = sealAt(records, [10, 20, 30, 35], signer);
    expect(await verify(records.slice(23), cps.slice(2), { partial: true })).toMatchObject({ ok: true, events: 12 });
    // …but a checkpoint missing after the first still shows.
    expect(await verify(records.slice(3), [cps[1]!, cps[3]!], { partial: true })).toMatchObject({
      ok: false,
      seq: 30,
      problem: 'checkpoint-missing',
    });
  });
});

describe('legacy (v1) checkpoints of earlier versions', () => {
  const { signer, publicKeys } = testSigner();
  const verify = (records: AuditRecord[], cps: AuditCheckpoint[]) =>
    verifyAuditChain(records, cps, { publicKeys, defaultEvery: 10 });

  it('a legacy prefix verifies as before, and chaining is required from the first v2 checkpoint on', async () => {
    const records = plainChain(60);
    // The old writer checkpointed after batches: 15 records apart, then a tail of 18 sealed by the first v2.
    const cps = sealAt(records, [15, 27, 45, 55, 60], signer, { legacyUpTo: 27 });
    expect(await verify(records, cps)).toMatchObject({
      ok: true,
      checkpoints: 5,
      legacyCheckpoints: 2,
      interval: { every: 10, intervalMs: 10_000 },
    });
    // The first v2 names the last v1: deleting that v1 shows.
    expect(
      await verify(
        records,
        cps.filter((c) => c.seq !== 27),
      ),
    ).toMatchObject({
      ok: false,
      seq: 27,
      problem: 'checkpoint-missing',
    });
  });

  it('a chain with only legacy checkpoints verifies, with at most twice the default interval unsealed after them', async () => {
    const records = plainChain(48);
    const cps = sealAt(records, [15, 27], signer, { legacyUpTo: 27 });
    expect(await verify(records.slice(0, 47), cps)).toMatchObject({ ok: true, legacyCheckpoints: 2, lastSeq: 47 });
    expect(await verify(records, cps)).toMatchObject({
      ok: false,
      seq: 48,
      problem: 'checkpoint-missing',
    });
  });

  it('a legacy checkpoint after a chained one → checkpoint-broken (no downgrade)', async () => {
    const records = plainChain(40);
    const cps = sealAt(records, [10, 20], signer);
    cps.push(signLegacyCheckpoint(signer, records[29]!));
    expect(await verify(records, cps)).toMatchObject({ ok: false, seq: 30, problem: 'checkpoint-broken' });
  });

  it('stripping the chained checkpoints of an upgraded chain (a downgrade) → checkpoint-missing', async () => {
    const records = plainChain(80);
    const cps = sealAt(records, [15, 27, 40, 50, 60, 70, 80], signer, { legacyUpTo: 27 });
    expect(await verify(records, cps)).toMatchObject({ ok: true });
    expect(await verify(records, cps.slice(0, 2))).toMatchObject({ ok: false, seq: 48, problem: 'checkpoint-missing' });
  });
});

describe('verifyAuditFile against stripped checkpoints', () => {
  it('checkpoint lines stripped and the chain re-made after an edit → checkpoint-missing', async () => {
    const { path, publicKeys } = await sealedChain();
    const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
    let prev = AUDIT_GENESIS_HASH;
    // The attacker expands the file's compact lines and writes full ones back.
    const reader = new AuditFileLineReader();
    const forged = lines
      .map((l) => reader.read(parseAuditFileLine(l)!))
      .flatMap((l) => (l?.kind === 'record' ? [l.record] : []))
      .map((r) => {
        const event = r.seq === 3 ? editEvent(r).event : r.event;
        const hash = auditChainHash(prev, event);
        const line = formatAuditRecordLine({ ...r, event, prevHash: prev, hash });
        prev = hash;
        return line;
      });
    await writeFile(path, `${forged.join('\n')}\n`);
    expect(await verifyAuditFile(path, { publicKeys, defaultEvery: 10 })).toMatchObject({
      ok: false,
      seq: 21,
      problem: 'checkpoint-missing',
    });
  });
});
