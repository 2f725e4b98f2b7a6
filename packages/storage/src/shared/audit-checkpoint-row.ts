import type { AuditCheckpoint } from '@custos/core';

/** A row of `audit_checkpoints` as a driver returns it (PostgreSQL gives bigints as strings). */
export interface AuditCheckpointRow {
  seq: number | string;
  hash: string;
  ts: string;
  key_id: string;
  signature: string;
  version: number | string;
  prev_seq: number | string | null;
  prev_digest: string | null;
  every: number | string | null;
  interval_ms: number | string | null;
}

/** The columns, in the order of {@link auditCheckpointValues}. */
export const AUDIT_CHECKPOINT_COLUMNS =
  'seq, hash, ts, key_id, signature, version, prev_seq, prev_digest, every, interval_ms';

/**
 * A row as a checkpoint. A row edited into an impossible shape (a v2 row with
 * a missing link) is still returned, with values no signature covers, so the
 * verifier reports it as a bad signature instead of the read failing.
 */
export function auditCheckpointFromRow(r: AuditCheckpointRow): AuditCheckpoint {
  const common = { seq: Number(r.seq), hash: r.hash, ts: r.ts, keyId: r.key_id, signature: r.signature };
  if (Number(r.version) !== 2) return { version: 1, ...common };
  return {
    version: 2,
    ...common,
    prevSeq: r.prev_seq === null ? -1 : Number(r.prev_seq),
    prevDigest: r.prev_digest ?? '',
    every: r.every === null ? 0 : Number(r.every),
    intervalMs: r.interval_ms === null ? 0 : Number(r.interval_ms),
  };
}

/** The values to insert, in the order of {@link AUDIT_CHECKPOINT_COLUMNS}. */
export function auditCheckpointValues(c: AuditCheckpoint): Array<string | number | null> {
  const common = [c.seq, c.hash, c.ts, c.keyId, c.signature];
  if (c.version !== 2) return [...common, 1, null, null, null, null];
  return [...common, 2, c.prevSeq, c.prevDigest, c.every, c.intervalMs];
}
