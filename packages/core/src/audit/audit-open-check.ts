import type { KeyObject } from 'node:crypto';
import { AuditIntegrityError } from '../errors/errors.js';
import type { AuditCheckpoint, AuditRecord, AuditStore } from '../ports/storage.js';
import { verifyAuditCheckpointSignature } from './audit-checkpoint.js';
import { AUDIT_EMPTY_HEAD, type AuditChainHead, auditChainHash } from './audit-hash.js';
import type { AuditSink } from './audit-sink.js';
import { isWellFormedAuditRecord } from './audit-verify.js';

// Internal to the audit log (AuditLog.open): not re-exported from the package.

/** What {@link checkAuditAtOpen} needs. */
export interface AuditOpenCheckOptions {
  readonly store: AuditStore;
  readonly sinks: readonly AuditSink[];
  /** Keys the stored checkpoints must verify with. */
  readonly publicKeys: ReadonlyMap<string, KeyObject>;
  /** The writer's checkpoint interval (records). */
  readonly every: number;
  readonly onSinkError: (sink: string, error: unknown) => void;
}

/** Where the chain stands once checked: its head and its last checkpoint, both verified. */
export interface AuditOpenState {
  readonly head: AuditChainHead;
  readonly lastCheckpoint: AuditCheckpoint | undefined;
}

/**
 * The records an unsealed tail may hold: `every` of the last checkpoint when
 * it is chained (or the writer's, if larger), else `2 × every` — a legacy
 * writer checkpointed after batches, so it left up to about twice its
 * interval unsealed, and the first chained checkpoint seals that tail.
 * The verifier applies the same bound to the checkpoint that seals it.
 */
function auditTailAllowance(last: AuditCheckpoint | undefined, every: number): number {
  return last?.version === 2 ? Math.max(last.every, every) : 2 * every;
}

/**
 * What `AuditLog.open` checks before it signs anything, with a bounded cost
 * (the last checkpoint, the records after it — at most a tail allowance —
 * and the ends of each sink's copy; never the whole history):
 *
 * 1. The database's last checkpoint verifies with the audit key, and the
 *    chain holds its hash at its seq.
 * 2. Each sink that keeps a copy (the JSON-lines file) agrees with the database: its
 *    last checkpoint is in the database, identical; its last record is the
 *    database's record at that seq, or it holds records beyond the database
 *    that continue its chain (acknowledged while the database was down),
 *    which are given to the database.
 * 3. The records after the last checkpoint are no more than the tail
 *    allowance and chain from it: well-formed, linked, hashes recomputed.
 *
 * Each failure throws {@link AuditIntegrityError}: the chain was rewritten,
 * cut back, or its checkpoints deleted, and sealing its head would sign a
 * forgery. Storage failures are thrown as they are.
 */
export async function checkAuditAtOpen(options: AuditOpenCheckOptions): Promise<AuditOpenState> {
  const { store, publicKeys } = options;
  const signed = (cp: AuditCheckpoint) => {
    const key = publicKeys.get(cp.keyId);
    return key !== undefined && verifyAuditCheckpointSignature(cp, key);
  };
  const recordAt = async (seq: number): Promise<AuditRecord | undefined> => {
    const [r] = await store.range(seq, 1);
    return r?.seq === seq ? r : undefined;
  };

  // The checkpoint first, then the head: records precede the checkpoints that
  // seal them, so the head read second is at or beyond it. Another node may
  // go on appending and sealing meanwhile; a tail that looks too long is
  // read again in case a newer checkpoint covers it.
  let last = await store.lastCheckpoint();
  let head: AuditChainHead = (await store.head()) ?? AUDIT_EMPTY_HEAD;
  for (let i = 0; i < 5 && head.seq - (last?.seq ?? 0) > auditTailAllowance(last, options.every); i++) {
    const newer = await store.lastCheckpoint();
    if (newer?.seq === last?.seq) break;
    last = newer;
    head = (await store.head()) ?? AUDIT_EMPTY_HEAD;
  }
  if (last) {
    if (!signed(last)) {
      throw new AuditIntegrityError(
        `the database's last checkpoint (seq ${last.seq}) does not verify with the audit key.`,
      );
    }
    const at = await recordAt(last.seq);
    if (!at) {
      throw new AuditIntegrityError(
        `the database chain ends at seq ${head.seq}, below its last checkpoint (seq ${last.seq}).`,
      );
    }
    if (at.hash !== last.hash) {
      throw new AuditIntegrityError(`the database chain at seq ${last.seq} differs from its signed checkpoint.`);
    }
  }

  const allowance = auditTailAllowance(last, options.every);
  const from = last ?? { seq: 0, hash: AUDIT_EMPTY_HEAD.hash };
  const tooLong = (end: number) =>
    new AuditIntegrityError(
      `${end - from.seq} records follow the last checkpoint (seq ${from.seq}); at most ${allowance} may.`,
    );
  for (const sink of options.sinks) {
    // Every sink that keeps a readable copy is a witness, fsynced or not: a
    // file that is not synced can only lag the database, never contradict it.
    if (!sink.tail) continue;
    let tail: Awaited<ReturnType<NonNullable<AuditSink['tail']>>>;
    try {
      tail = await sink.tail(2 * allowance);
    } catch (error) {
      // An unreadable file is a sink failure, not evidence: the log reports it and goes on.
      options.onSinkError(sink.name, error);
      continue;
    }
    const cp = tail.checkpoint;
    if (cp) {
      if (!signed(cp)) {
        throw new AuditIntegrityError(
          `the ${sink.name} sink's last checkpoint (seq ${cp.seq}) does not verify with the audit key.`,
        );
      }
      if (!last || cp.seq > last.seq) {
        throw new AuditIntegrityError(
          `the ${sink.name} sink holds a checkpoint at seq ${cp.seq} that the database lacks.`,
        );
      }
      const [stored] = await store.checkpointsFrom(cp.seq, 1);
      if (stored?.seq !== cp.seq || stored.signature !== cp.signature) {
        throw new AuditIntegrityError(
          `the database's checkpoint at seq ${cp.seq} differs from the ${sink.name} sink's.`,
        );
      }
    }
    const r = tail.record;
    if (!r) continue;
    if (r.seq <= head.seq) {
      const at = await recordAt(r.seq);
      if (at?.hash !== r.hash) {
        throw new AuditIntegrityError(`the database chain and the ${sink.name} sink differ at seq ${r.seq}.`);
      }
      continue;
    }
    // The sink holds records beyond the database: acknowledged through it
    // while the database was down, just before a crash (or, for a file that
    // is not fsynced, written there when the database write failed). They
    // must continue the database's chain exactly; then the database gets them.
    const missing = sink.recordsAfter ? await sink.recordsAfter(head.seq) : [];
    if (missing.length === 0 || !continuesChain(head, missing)) {
      throw new AuditIntegrityError(
        `the ${sink.name} sink holds records after seq ${head.seq} that do not continue the database chain.`,
      );
    }
    // Checked before anything is written: a file cannot push more than one interval into the database.
    if (head.seq + missing.length - from.seq > allowance) throw tooLong(head.seq + missing.length);
    await store.append(missing);
    const end = missing[missing.length - 1]!;
    head = { seq: end.seq, hash: end.hash };
  }

  if (head.seq - from.seq > allowance) throw tooLong(head.seq);
  let prev: AuditChainHead = { seq: from.seq, hash: from.hash };
  while (prev.seq < head.seq) {
    const batch = await store.range(prev.seq + 1, Math.min(1_000, head.seq - prev.seq));
    if (batch.length === 0 || !continuesChain(prev, batch) || !batch.every(isWellFormedAuditRecord)) {
      throw new AuditIntegrityError(`the records after the last checkpoint (seq ${from.seq}) do not chain from it.`);
    }
    const end = batch[batch.length - 1]!;
    prev = { seq: end.seq, hash: end.hash };
  }
  if (prev.hash !== head.hash) {
    throw new AuditIntegrityError(`the records after the last checkpoint (seq ${from.seq}) do not chain from it.`);
  }
  return { head, lastCheckpoint: last };
}

/**
 * Gives a sink what it missed while the process was down: checkpoint lines
 * lost to a crash between the database write and the sink write, then the
 * records (with their checkpoints) the database committed after the sink's
 * last one. A sink with no record yet is new: it starts at the last
 * checkpoint (when it can: {@link AuditSink.startsAtCheckpoint}) or at the
 * head instead of copying the whole history.
 */
export async function catchUpAuditSink(
  store: AuditStore,
  sink: AuditSink,
  head: AuditChainHead,
  every: number,
): Promise<void> {
  if (!sink.lastRecordSeq) return;
  let last = await sink.lastRecordSeq();
  if (last === undefined) {
    // A new sink starts at the last checkpoint (the file sink makes it the
    // anchor its copy verifies from), followed by the records after it.
    const cp = await store.lastCheckpoint();
    if (!cp || !sink.writeCheckpoint || !sink.startsAtCheckpoint) return;
    await sink.writeCheckpoint(cp);
    last = cp.seq;
  }
  const writeCheckpoints = async (after: number, upTo: number) => {
    if (!sink.writeCheckpoint || upTo <= after) return;
    for (const cp of await store.checkpointsFrom(after + 1, 10_000)) {
      if (cp.seq > upTo) break;
      await sink.writeCheckpoint(cp);
    }
  };
  if (sink.tail) {
    // Only the newest checkpoint lines can be lost that way; none within the
    // scanned tail means those of the tail are missing (or the sink is young).
    const scanned = 4 * every;
    const lastCheckpoint = (await sink.tail(scanned)).checkpoint;
    await writeCheckpoints(lastCheckpoint?.seq ?? Math.max(0, last - scanned), Math.min(last, head.seq));
  }
  for (let from = last + 1; from <= head.seq; ) {
    const missing = await store.range(from, 1_000);
    if (missing.length === 0) break;
    await sink.write(missing);
    const end = missing[missing.length - 1]!.seq;
    await writeCheckpoints(from - 1, end);
    from = end + 1;
  }
}

/** True when `records` are well-formed successors of `head` (used before trusting a copy of the chain). */
function continuesChain(head: AuditChainHead, records: readonly AuditRecord[]): boolean {
  let prev = head;
  for (const r of records) {
    if (r.seq !== prev.seq + 1 || r.prevHash !== prev.hash || auditChainHash(r.prevHash, r.event) !== r.hash)
      return false;
    prev = r;
  }
  return true;
}
