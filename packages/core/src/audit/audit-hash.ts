import { createHash } from 'node:crypto';
import type { AuditRecord } from '../ports/storage.js';

/** The `prevHash` of seq 1: 64 zeros. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/**
 * The hash of one audit record:
 *
 *     hash = lowercase_hex( SHA-256( UTF-8( prevHash + "\n" + event ) ) )
 *
 * where `prevHash` is the previous record's hash as 64 lower-case hex
 * characters ({@link AUDIT_GENESIS_HASH} for seq 1) and `event` is the
 * record's canonical JSON text. The newline cannot occur in either part
 * (hex has none; canonical JSON escapes it), so the split is unambiguous.
 * `seq` is not hashed: a record's position is fixed by the chain of
 * `prevHash` links, and `ts` is covered because it equals the event's `time`.
 */
export function auditChainHash(prevHash: string, event: string): string {
  return createHash('sha256').update(prevHash).update('\n').update(event).digest('hex');
}

/** The end of a chain: the seq and hash a new record links to (seq 0 and the genesis hash when empty). */
export interface AuditChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** The head before the first record. */
export const AUDIT_EMPTY_HEAD: AuditChainHead = { seq: 0, hash: AUDIT_GENESIS_HASH };

/** An event ready to be chained: its canonical JSON and its time (which is the event's `time`). */
export interface AuditChainItem {
  readonly ts: string;
  readonly event: string;
}

/** Links `items` after `head`: consecutive seqs, each `prevHash` the hash before it. */
export function chainAuditRecords(head: AuditChainHead, items: readonly AuditChainItem[]): AuditRecord[] {
  const out: AuditRecord[] = [];
  let seq = head.seq;
  let prevHash = head.hash;
  for (const item of items) {
    seq += 1;
    const hash = auditChainHash(prevHash, item.event);
    out.push({ seq, ts: item.ts, prevHash, hash, event: item.event });
    prevHash = hash;
  }
  return out;
}
