import type { KeyObject } from 'node:crypto';
import type { AuditCheckpoint, AuditRecord, AuditStore } from '../ports/storage.js';
import { verifyAuditCheckpointSignature } from './audit-checkpoint.js';
import { AUDIT_EMPTY_HEAD, auditChainHash } from './audit-hash.js';
import { canonicalJson } from './canonical-json.js';

/**
 * What is wrong at the reported seq:
 * - `missing`: the seq is absent (a record was deleted, or the chain does not start at 1).
 * - `out-of-order`: a seq at or below one already seen (records reordered or duplicated).
 * - `broken`: the record's `prevHash` is not the previous record's hash (a record before it was rewritten, or one removed and the rest renumbered).
 * - `altered`: the record's hash is not SHA-256 of its prevHash and event (its event or hash was edited).
 * - `malformed`: the event is not canonical JSON with `time` equal to the record's `ts`, or a file line does not parse.
 * - `checkpoint-mismatch`: a validly signed checkpoint says the chain at this seq had another hash (the chain was rewritten).
 * - `truncated`: a validly signed checkpoint names a seq beyond the end of the chain; `seq` is the first missing one.
 * - `bad-signature`: a checkpoint's signature does not verify (forged or edited).
 * - `unknown-key`: a checkpoint is signed by a key id not among the trusted public keys.
 */
export type AuditVerifyProblem =
  | 'missing'
  | 'out-of-order'
  | 'broken'
  | 'altered'
  | 'malformed'
  | 'checkpoint-mismatch'
  | 'truncated'
  | 'bad-signature'
  | 'unknown-key';

/** The outcome of a verification: all good, or the first problem in seq order. */
export type AuditVerifyReport =
  | {
      readonly ok: true;
      /** Records verified. */
      readonly events: number;
      /** Checkpoints whose signature and hash verified. */
      readonly checkpoints: number;
      /** Highest seq (0 for an empty chain). */
      readonly lastSeq: number;
      /** Seq of the last checkpoint (0 when none). Records above it are protected by the hash chain only. */
      readonly lastCheckpointSeq: number;
    }
  | {
      readonly ok: false;
      readonly seq: number;
      readonly problem: AuditVerifyProblem;
      /** One safe sentence for the operator (seqs and hashes only, never event contents). */
      readonly detail: string;
      /** Records verified before the problem. */
      readonly events: number;
    };

export interface AuditVerifyOptions {
  /** Trusted checkpoint keys by key id (Ed25519 public `KeyObject`s). */
  readonly publicKeys: ReadonlyMap<string, KeyObject>;
  /** Records fetched per `range` call (default 1,000). */
  readonly batchSize?: number;
}

/**
 * Verifies the whole audit chain in `store`, streaming it in batches from
 * seq 1: contiguous seqs, `prevHash` links, recomputed hashes, canonical
 * events, checkpoint signatures, and that the chain has each checkpoint's
 * hash at its seq (so a rewritten or truncated chain is caught).
 *
 * Limit: records after the last checkpoint are protected by the chain only;
 * whoever can write the database can drop them undetected. Checkpoints are
 * therefore frequent and written on shutdown.
 */
export async function verifyAudit(store: AuditStore, options: AuditVerifyOptions): Promise<AuditVerifyReport> {
  const checkpoints = await store.checkpoints();
  return verifyAuditChain(streamRecords(store, 1, options.batchSize ?? 1_000), checkpoints, options);
}

async function* streamRecords(store: AuditStore, fromSeq: number, batchSize: number): AsyncGenerator<AuditRecord> {
  let next = fromSeq;
  for (;;) {
    const batch = await store.range(next, batchSize);
    if (batch.length === 0) return;
    yield* batch;
    next = batch[batch.length - 1]!.seq + 1;
  }
}

/** Options of {@link verifyAuditChain}. */
export interface AuditChainVerifyOptions {
  readonly publicKeys: ReadonlyMap<string, KeyObject>;
  /**
   * Accept a chain that starts after seq 1 (an `export --since`): the first
   * record's seq and prevHash are taken as given. Checkpoints below it are
   * checked for their signature only. Default false.
   */
  readonly partial?: boolean;
}

/**
 * Verifies records (ascending, as stored or exported) against checkpoints.
 * The building block of {@link verifyAudit} and the file verifier.
 */
export async function verifyAuditChain(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  checkpoints: readonly AuditCheckpoint[],
  options: AuditChainVerifyOptions,
): Promise<AuditVerifyReport> {
  const cps = [...checkpoints].sort((a, b) => a.seq - b.seq);
  let ci = 0;
  let verifiedCheckpoints = 0;
  let lastCheckpointSeq = 0;
  let expected = AUDIT_EMPTY_HEAD.seq + 1;
  let prevHash = AUDIT_EMPTY_HEAD.hash;
  let events = 0;
  let first = true;

  const fail = (seq: number, problem: AuditVerifyProblem, detail: string): AuditVerifyReport => ({
    ok: false,
    seq,
    problem,
    detail,
    events,
  });
  const signatureProblem = (cp: AuditCheckpoint): AuditVerifyReport | undefined => {
    const key = options.publicKeys.get(cp.keyId);
    if (!key) return fail(cp.seq, 'unknown-key', `checkpoint at seq ${cp.seq} is signed by an unknown key`);
    if (!verifyAuditCheckpointSignature(cp, key)) {
      return fail(cp.seq, 'bad-signature', `checkpoint at seq ${cp.seq} has an invalid signature`);
    }
    return undefined;
  };

  for await (const r of records) {
    if (first && options.partial) {
      expected = r.seq;
      prevHash = r.prevHash;
    }
    first = false;
    if (r.seq > expected) return fail(expected, 'missing', `seq ${expected} is missing (next present is ${r.seq})`);
    if (r.seq < expected) return fail(r.seq, 'out-of-order', `seq ${r.seq} appears after seq ${expected - 1}`);
    if (r.prevHash !== prevHash) {
      return fail(r.seq, 'broken', `seq ${r.seq} does not link to the hash of seq ${r.seq - 1}`);
    }
    if (auditChainHash(r.prevHash, r.event) !== r.hash) {
      return fail(r.seq, 'altered', `seq ${r.seq} does not match its hash`);
    }
    if (!isWellFormedEvent(r)) {
      return fail(r.seq, 'malformed', `seq ${r.seq} is not a canonical event recorded at its ts`);
    }
    // Checkpoints below this record can only exist before a partial start: signatures only.
    for (; ci < cps.length && cps[ci]!.seq <= r.seq; ci++) {
      const cp = cps[ci]!;
      const bad = signatureProblem(cp);
      if (bad) return bad;
      if (cp.seq === r.seq && cp.hash !== r.hash) {
        return fail(r.seq, 'checkpoint-mismatch', `the chain at seq ${r.seq} differs from its signed checkpoint`);
      }
      verifiedCheckpoints++;
      lastCheckpointSeq = cp.seq;
    }
    prevHash = r.hash;
    expected = r.seq + 1;
    events++;
  }

  const lastSeq = expected - 1;
  const beyond = cps[ci];
  if (beyond) {
    // A forged checkpoint beyond the end is a forgery, not evidence of truncation.
    const bad = signatureProblem(beyond);
    if (bad) return bad;
    return fail(
      lastSeq + 1,
      'truncated',
      `the chain ends at seq ${lastSeq} but a signed checkpoint covers seq ${beyond.seq}`,
    );
  }
  return { ok: true, events, checkpoints: verifiedCheckpoints, lastSeq, lastCheckpointSeq };
}

function isWellFormedEvent(r: AuditRecord): boolean {
  try {
    const parsed: unknown = JSON.parse(r.event);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false;
    return (parsed as { time?: unknown }).time === r.ts && canonicalJson(parsed) === r.event;
  } catch {
    return false;
  }
}
