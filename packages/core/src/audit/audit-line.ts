import type { AuditCheckpoint, AuditRecord } from '../ports/storage.js';
import { canonicalJson } from './canonical-json.js';

/**
 * One line of a JSON-lines audit file (the file sink and `custos audit export`
 * write the same format, and `custos audit verify --file` reads it):
 *
 *     {"event":"<canonical event JSON>","hash":"…","kind":"record","prevHash":"…","seq":1,"ts":"…"}
 *     {"every":1000,"hash":"…","intervalMs":10000,"keyId":"…","kind":"checkpoint","prevDigest":"…","prevSeq":0,"seq":1000,"signature":"…","ts":"…","version":2}
 *
 * A legacy (v1) checkpoint line has no `version` and no link fields.
 *
 * Each line is itself canonical JSON. The event stays a *string* holding
 * the exact bytes that were hashed, so a verifier needs no canonicalisation
 * of its own (`jq '.event | fromjson'` shows it as an object).
 */
export type AuditLine =
  | { readonly kind: 'record'; readonly record: AuditRecord }
  | { readonly kind: 'checkpoint'; readonly checkpoint: AuditCheckpoint };

const HEX_HASH = /^[0-9a-f]{64}$/;

/**
 * The line (without its newline) for a record: the canonical JSON of
 * `{kind, seq, ts, prevHash, hash, event}`, written out directly in member
 * order because it is made for every event on the hot path. Only the
 * shapes the chain produces take this path (hex hashes, a safe seq); anything
 * else goes through {@link canonicalJson}, which also refuses what has no
 * canonical form.
 */
export function formatAuditRecordLine(record: AuditRecord): string {
  const { seq, ts, prevHash, hash, event } = record;
  if (HEX_HASH.test(hash) && HEX_HASH.test(prevHash) && Number.isSafeInteger(seq) && seq >= 1) {
    // Member order is UTF-16 order: event < hash < kind < prevHash < seq < ts.
    return `{"event":${canonicalJson(event)},"hash":"${hash}","kind":"record","prevHash":"${prevHash}","seq":${seq},"ts":${canonicalJson(ts)}}`;
  }
  return canonicalJson({ kind: 'record', seq, ts, prevHash, hash, event });
}

/** The line (without its newline) for a checkpoint. */
export function formatAuditCheckpointLine(checkpoint: AuditCheckpoint): string {
  const { seq, hash, ts, keyId, signature } = checkpoint;
  // A legacy checkpoint keeps the exact line it always had.
  if (checkpoint.version !== 2) return canonicalJson({ kind: 'checkpoint', seq, hash, ts, keyId, signature });
  const { version, prevSeq, prevDigest, every, intervalMs } = checkpoint;
  return canonicalJson({
    kind: 'checkpoint',
    seq,
    hash,
    ts,
    keyId,
    signature,
    version,
    prevSeq,
    prevDigest,
    every,
    intervalMs,
  });
}

/** Parses one line; `undefined` when it is not a well-formed record or checkpoint line. */
export function parseAuditLine(line: string): AuditLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  return parseAuditLineValue(value as Record<string, unknown>);
}

/** {@link parseAuditLine} of a line already parsed as JSON. */
export function parseAuditLineValue(v: Record<string, unknown>): AuditLine | undefined {
  if (!isSeq(v.seq) || typeof v.hash !== 'string' || typeof v.ts !== 'string') return undefined;
  if (v.kind === 'record' && typeof v.prevHash === 'string' && typeof v.event === 'string') {
    return { kind: 'record', record: { seq: v.seq, ts: v.ts, prevHash: v.prevHash, hash: v.hash, event: v.event } };
  }
  if (v.kind === 'checkpoint' && typeof v.keyId === 'string' && typeof v.signature === 'string') {
    const common = { seq: v.seq, hash: v.hash, ts: v.ts, keyId: v.keyId, signature: v.signature };
    if (v.version === undefined) return { kind: 'checkpoint', checkpoint: { version: 1, ...common } };
    if (
      v.version === 2 &&
      (v.prevSeq === 0 || isSeq(v.prevSeq)) &&
      typeof v.prevDigest === 'string' &&
      isSeq(v.every) &&
      (v.intervalMs === 0 || isSeq(v.intervalMs))
    ) {
      const { prevSeq, prevDigest, every, intervalMs } = v;
      return { kind: 'checkpoint', checkpoint: { version: 2, ...common, prevSeq, prevDigest, every, intervalMs } };
    }
  }
  return undefined;
}

function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1;
}
