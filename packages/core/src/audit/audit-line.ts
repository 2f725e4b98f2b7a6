import type { AuditCheckpoint, AuditRecord } from '../ports/storage.js';
import { canonicalJson } from './canonical-json.js';

/**
 * One line of a JSON-lines audit file (the file sink and `custos audit export`
 * write the same format, and `custos audit verify --file` reads it):
 *
 *     {"event":"<canonical event JSON>","hash":"…","kind":"record","prevHash":"…","seq":1,"ts":"…"}
 *     {"hash":"…","keyId":"…","kind":"checkpoint","seq":1000,"signature":"…","ts":"…"}
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
  return canonicalJson({ kind: 'checkpoint', seq, hash, ts, keyId, signature });
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
  const v = value as Record<string, unknown>;
  if (!isSeq(v.seq) || typeof v.hash !== 'string' || typeof v.ts !== 'string') return undefined;
  if (v.kind === 'record' && typeof v.prevHash === 'string' && typeof v.event === 'string') {
    return { kind: 'record', record: { seq: v.seq, ts: v.ts, prevHash: v.prevHash, hash: v.hash, event: v.event } };
  }
  if (v.kind === 'checkpoint' && typeof v.keyId === 'string' && typeof v.signature === 'string') {
    return {
      kind: 'checkpoint',
      checkpoint: { seq: v.seq, hash: v.hash, ts: v.ts, keyId: v.keyId, signature: v.signature },
    };
  }
  return undefined;
}

function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1;
}
