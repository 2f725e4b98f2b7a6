import type { KeyObject } from 'node:crypto';
import type { AuditCheckpoint, AuditRecord, AuditStore } from '../ports/storage.js';
import { AUDIT_CHECKPOINT_GENESIS, auditCheckpointDigest, verifyAuditCheckpointSignature } from './audit-checkpoint.js';
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
 * - `checkpoint-missing`: a checkpoint the chain requires is absent: one that the next
 *   checkpoint names, or one due within the signed interval (between two checkpoints,
 *   or after the last one); `seq` is the named seq or the first record left unsealed too long.
 * - `checkpoint-broken`: checkpoints do not form one chain: one names a predecessor other than
 *   the checkpoint before it (a different one at that seq, or one further back), or a legacy
 *   (v1) checkpoint follows a chained (v2) one.
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
  | 'unknown-key'
  | 'checkpoint-missing'
  | 'checkpoint-broken';

/** The outcome of a verification: all good, or the first problem in seq order. */
export type AuditVerifyReport =
  | {
      readonly ok: true;
      /** Records up to this seq are archived (verified from the archive's checkpoint on); absent before any archival. */
      readonly archivedThrough?: number;
      /** Records verified. */
      readonly events: number;
      /** Checkpoints whose signature, link and hash verified. */
      readonly checkpoints: number;
      /** Of those, legacy (v1) checkpoints: signed but not chained. */
      readonly legacyCheckpoints: number;
      /** Highest seq (0 for an empty chain). */
      readonly lastSeq: number;
      /** Seq of the last checkpoint (0 when none). Records above it are protected by the hash chain only. */
      readonly lastCheckpointSeq: number;
      /** The interval the last checkpoint was signed with (absent when no chained checkpoint exists). */
      readonly interval?: { readonly every: number; readonly intervalMs: number };
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

/**
 * The interval assumed where no signed checkpoint states one: for the
 * records of a chain without any chained (v2) checkpoint. It is the writer's
 * default, and only ever applied doubled (see {@link verifyAuditChain}).
 */
export const AUDIT_DEFAULT_CHECKPOINT_EVERY = 1_000;

export interface AuditVerifyOptions {
  /** Trusted checkpoint keys by key id (Ed25519 public `KeyObject`s). */
  readonly publicKeys: ReadonlyMap<string, KeyObject>;
  /** Records fetched per `range` call (default 1,000). */
  readonly batchSize?: number;
  /** See {@link AuditChainVerifyOptions.defaultEvery}. */
  readonly defaultEvery?: number;
}

/**
 * Verifies the whole audit chain in `store`, streaming it in batches from
 * seq 1: contiguous seqs, `prevHash` links, recomputed hashes, canonical
 * events, and the checkpoint chain (see {@link verifyAuditChain}).
 *
 * Limit: the records after the last checkpoint (at most its interval) are
 * protected by the chain only; whoever can write the database can drop
 * them, or cut the chain back to an earlier checkpoint and delete the
 * checkpoints after it, undetected by the database alone (docs/audit.md).
 */
export async function verifyAudit(store: AuditStore, options: AuditVerifyOptions): Promise<AuditVerifyReport> {
  // After archival the online chain starts at the last archive's checkpoint
  // (its signature is checked). That the archives end there is for
  // `verifyAuditArchives` to show: the database alone cannot.
  const archived = await store.archiveState();
  const checkpoints = await store.checkpoints();
  const from = archived ? archived.checkpoint.seq + 1 : 1;
  const report = await verifyAuditChain(streamRecords(store, from, options.batchSize ?? 1_000), checkpoints, {
    ...options,
    ...(archived ? { anchor: archived.checkpoint } : {}),
  });
  return archived && report.ok ? { ...report, archivedThrough: archived.checkpoint.seq } : report;
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
   * Accept a chain that starts after seq 1 (an `export --since`, or a file
   * sink added to a running deployment): the first record's seq and
   * prevHash are taken as given, and so is the first checkpoint's
   * predecessor (its signed `prevSeq` still bounds its interval). Every
   * later checkpoint must chain as usual. Default false.
   */
  readonly partial?: boolean;
  /**
   * Start from this checkpoint, trusted as the chain's known-good beginning
   * (an archive's anchor): records begin right after it and link to its
   * hash, and the first checkpoint after it must name it. Its signature is
   * still checked; checkpoints at or below it are ignored.
   */
  readonly anchor?: AuditCheckpoint;
  /**
   * The interval assumed where no chained checkpoint states one (default
   * {@link AUDIT_DEFAULT_CHECKPOINT_EVERY}); see {@link verifyAuditChain}.
   */
  readonly defaultEvery?: number;
}

interface Problem {
  readonly seq: number;
  readonly problem: AuditVerifyProblem;
  readonly detail: string;
}

/** Where the checkpoint chain stands after each checkpoint. */
interface ChainPoint {
  readonly seq: number;
  readonly digest: string;
  readonly version: 0 | 1 | 2;
  /** v2: the signed `every`. */
  readonly every: number;
  readonly intervalMs: number;
}

const HEX_64 = /^[0-9a-f]{64}$/;
const isCount = (n: number, min: number) => Number.isSafeInteger(n) && n >= min;

/** Shape checks beyond the signature: fields a statement cannot hold unambiguously are refused outright. */
function isWellFormedCheckpoint(cp: AuditCheckpoint): boolean {
  if (!isCount(cp.seq, 1) || !HEX_64.test(cp.hash) || typeof cp.ts !== 'string' || cp.ts.includes('\n')) return false;
  if (cp.version === 1) return true;
  return (
    cp.version === 2 &&
    isCount(cp.prevSeq, 0) &&
    cp.prevSeq < cp.seq &&
    HEX_64.test(cp.prevDigest) &&
    isCount(cp.every, 1) &&
    isCount(cp.intervalMs, 0)
  );
}

/**
 * Verifies the checkpoints on their own, in seq order: signatures, one chain
 * of links, and the interval rule. Returns the first problem (in seq order)
 * and the last checkpoint reached.
 *
 * The interval rule, which the writer ({@link AuditLog}) keeps exactly:
 * a chained checkpoint lies at most `max(every of it, every of the one
 * before)` records after the one before; the first chained checkpoint (after
 * the start of the chain or after legacy ones) at most `2 × every`, because
 * it seals whatever tail a legacy writer left. Legacy (v1) checkpoints have
 * no interval and no link and may only precede chained ones.
 */
function verifyCheckpointChain(
  checkpoints: readonly AuditCheckpoint[],
  options: AuditChainVerifyOptions,
): { problem?: Problem; last: ChainPoint; count: number; legacy: number } {
  const signatureProblem = (cp: AuditCheckpoint): Problem | undefined => {
    if (!isWellFormedCheckpoint(cp)) {
      return { seq: cp.seq, problem: 'bad-signature', detail: `checkpoint at seq ${cp.seq} is malformed` };
    }
    const key = options.publicKeys.get(cp.keyId);
    if (!key)
      return { seq: cp.seq, problem: 'unknown-key', detail: `checkpoint at seq ${cp.seq} is signed by an unknown key` };
    if (!verifyAuditCheckpointSignature(cp, key)) {
      return { seq: cp.seq, problem: 'bad-signature', detail: `checkpoint at seq ${cp.seq} has an invalid signature` };
    }
    return undefined;
  };
  const point = (cp: AuditCheckpoint): ChainPoint => ({
    seq: cp.seq,
    digest: auditCheckpointDigest(cp),
    version: cp.version,
    every: cp.version === 2 ? cp.every : 0,
    intervalMs: cp.version === 2 ? cp.intervalMs : 0,
  });

  const anchor = options.anchor;
  let last: ChainPoint = { ...AUDIT_CHECKPOINT_GENESIS, version: 0, every: 0, intervalMs: 0 };
  if (anchor) {
    const bad = signatureProblem(anchor);
    if (bad) return { problem: bad, last, count: 0, legacy: 0 };
    last = point(anchor);
  }
  const sorted = [...checkpoints].filter((c) => c.seq > last.seq).sort((a, b) => a.seq - b.seq);
  let count = 0;
  let legacy = 0;
  // A partial copy may begin at any checkpoint: the first one's predecessor is taken as given.
  let unknownPredecessor = options.partial === true && !anchor;
  for (const cp of sorted) {
    const found: Problem[] = [];
    // The same checkpoint twice (a file given a line again after a crash) is one checkpoint.
    if (cp.seq === last.seq && auditCheckpointDigest(cp) === last.digest) continue;
    const bad = signatureProblem(cp);
    if (bad) found.push(bad);
    else if (cp.seq === last.seq) {
      found.push({ seq: cp.seq, problem: 'checkpoint-broken', detail: `two checkpoints claim seq ${cp.seq}` });
    } else if (cp.version === 1) {
      if (last.version === 2) {
        found.push({
          seq: cp.seq,
          problem: 'checkpoint-broken',
          detail: `the legacy checkpoint at seq ${cp.seq} follows a chained one`,
        });
      }
    } else if (unknownPredecessor) {
      if (cp.seq - cp.prevSeq > 2 * cp.every) {
        found.push({
          seq: cp.prevSeq + 2 * cp.every + 1,
          problem: 'checkpoint-missing',
          detail: `the checkpoint at seq ${cp.seq} lies ${cp.seq - cp.prevSeq} records after the one it names; at most ${2 * cp.every} may`,
        });
      }
    } else if (cp.prevSeq > last.seq) {
      found.push({
        seq: cp.prevSeq,
        problem: 'checkpoint-missing',
        detail: `the checkpoint at seq ${cp.prevSeq}, named by the one at seq ${cp.seq}, is missing`,
      });
    } else if (cp.prevSeq !== last.seq || cp.prevDigest !== last.digest) {
      found.push({
        seq: cp.seq,
        problem: 'checkpoint-broken',
        detail: `the checkpoint at seq ${cp.seq} does not name the checkpoint before it (seq ${last.seq})`,
      });
    } else {
      const limit = last.version === 2 ? Math.max(last.every, cp.every) : 2 * cp.every;
      if (cp.seq - last.seq > limit) {
        found.push({
          seq: last.seq + limit + 1,
          problem: 'checkpoint-missing',
          detail: `checkpoints at seqs ${last.seq} and ${cp.seq} are ${cp.seq - last.seq} records apart; at most ${limit} may be`,
        });
      }
    }
    if (found.length > 0) {
      return { problem: found.reduce((a, b) => (b.seq < a.seq ? b : a)), last, count, legacy };
    }
    last = point(cp);
    unknownPredecessor = false;
    count++;
    if (cp.version === 1) legacy++;
  }
  return { last, count, legacy };
}

/**
 * Verifies records (ascending, as stored or exported) against checkpoints.
 * The building block of {@link verifyAudit} and the file verifier.
 *
 * Besides each record (contiguous seqs, links, hashes, canonical events) and
 * each checkpoint (signature, hash at its seq, chain and interval: see
 * `verifyCheckpointChain`), it checks the tail: at most `every` of the last
 * checkpoint records may follow it (`2 × defaultEvery` when the chain has no
 * chained checkpoint), so deleting the trailing checkpoints shows unless
 * the records they sealed are deleted too.
 */
export async function verifyAuditChain(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  checkpoints: readonly AuditCheckpoint[],
  options: AuditChainVerifyOptions,
): Promise<AuditVerifyReport> {
  const chain = verifyCheckpointChain(checkpoints, options);
  const anchor = options.anchor;
  const cps = [...checkpoints].filter((c) => c.seq > (anchor?.seq ?? 0)).sort((a, b) => a.seq - b.seq);
  let ci = 0;
  let expected = (anchor?.seq ?? AUDIT_EMPTY_HEAD.seq) + 1;
  let prevHash = anchor?.hash ?? AUDIT_EMPTY_HEAD.hash;
  let events = 0;
  let first = true;

  const fail = (p: Problem): AuditVerifyReport => ({ ok: false, ...p, events });

  for await (const r of records) {
    if (first && options.partial && !anchor) {
      expected = r.seq;
      prevHash = r.prevHash;
    }
    first = false;
    if (chain.problem && chain.problem.seq < r.seq) return fail(chain.problem);
    if (r.seq > expected) {
      return fail({
        seq: expected,
        problem: 'missing',
        detail: `seq ${expected} is missing (next present is ${r.seq})`,
      });
    }
    if (r.seq < expected) {
      return fail({ seq: r.seq, problem: 'out-of-order', detail: `seq ${r.seq} appears after seq ${expected - 1}` });
    }
    if (r.prevHash !== prevHash) {
      return fail({
        seq: r.seq,
        problem: 'broken',
        detail: `seq ${r.seq} does not link to the hash of seq ${r.seq - 1}`,
      });
    }
    if (auditChainHash(r.prevHash, r.event) !== r.hash) {
      return fail({ seq: r.seq, problem: 'altered', detail: `seq ${r.seq} does not match its hash` });
    }
    if (!isWellFormedAuditRecord(r)) {
      return fail({
        seq: r.seq,
        problem: 'malformed',
        detail: `seq ${r.seq} is not a canonical event recorded at its ts`,
      });
    }
    if (chain.problem && chain.problem.seq === r.seq) return fail(chain.problem);
    // Checkpoints below this record exist only before a partial start: their chain was checked above.
    for (; ci < cps.length && cps[ci]!.seq <= r.seq; ci++) {
      const cp = cps[ci]!;
      if (cp.seq === r.seq && cp.hash !== r.hash) {
        return fail({
          seq: r.seq,
          problem: 'checkpoint-mismatch',
          detail: `the chain at seq ${r.seq} differs from its signed checkpoint`,
        });
      }
    }
    prevHash = r.hash;
    expected = r.seq + 1;
    events++;
  }

  const lastSeq = expected - 1;
  if (chain.problem) return fail(chain.problem);
  const beyond = cps[ci];
  if (beyond) {
    return fail({
      seq: lastSeq + 1,
      problem: 'truncated',
      detail: `the chain ends at seq ${lastSeq} but a signed checkpoint covers seq ${beyond.seq}`,
    });
  }
  const last = chain.last;
  const allowed = last.version === 2 ? last.every : 2 * (options.defaultEvery ?? AUDIT_DEFAULT_CHECKPOINT_EVERY);
  if (lastSeq - last.seq > allowed) {
    return fail({
      seq: last.seq + allowed + 1,
      problem: 'checkpoint-missing',
      detail: `${lastSeq - last.seq} records follow the last checkpoint (seq ${last.seq}); at most ${allowed} may`,
    });
  }
  return {
    ok: true,
    events,
    checkpoints: chain.count,
    legacyCheckpoints: chain.legacy,
    lastSeq,
    lastCheckpointSeq: last.seq,
    ...(last.version === 2 ? { interval: { every: last.every, intervalMs: last.intervalMs } } : {}),
  };
}

/** True when the record's event is canonical JSON of an object whose `time` is the record's `ts`. */
export function isWellFormedAuditRecord(r: AuditRecord): boolean {
  try {
    const parsed: unknown = JSON.parse(r.event);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false;
    return (parsed as { time?: unknown }).time === r.ts && canonicalJson(parsed) === r.event;
  } catch {
    return false;
  }
}
