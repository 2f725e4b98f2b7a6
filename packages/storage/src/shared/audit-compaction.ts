import {
  AUDIT_GENESIS_HASH,
  type AuditRecord,
  auditDictionaryId,
  auditEventRefs,
  compactAuditEvent,
  expandAuditEvent,
  isAuditDictionaryEntry,
} from '@custos/core';

/** The prev_hash stored for a record whose predecessor's hash is its prevHash (it is read back from that row). */
export const DERIVED_PREV_HASH = '';

const HEX_HASH = /^[0-9a-f]{64}$/;

/**
 * How far, in seqs, a dictionary entry's recorded use may trail its real
 * last use (docs/audit.md, "The dictionary's collection"). The stores keep
 * one invariant: for every stored record at seq r that references entry X,
 * X.last_seq ≥ r − span.
 *
 * - An archive run with anchor A deletes X only when last_seq < A − span:
 *   every record referencing X is then below A, archived.
 * - A writer appending a batch that ends at s records a use (last_seq =
 *   max(last_seq, s), inserting X if it is gone) unless it itself recorded
 *   one, committed, at t ≥ s − span. X cannot have been deleted since: that
 *   takes t < A − span for an anchor A ≤ head < s, so t < s − span. And
 *   last_seq only rises, so X.last_seq ≥ t ≥ s − span ≥ r − span for every
 *   record r of the batch.
 *
 * The span trades writes (one per entry in use per span per node) against
 * how long an unused entry outlives its last reference.
 *
 * Every node sharing a database must use the same span, and it must never
 * be lowered while records written under a larger one are online: a run
 * with a smaller span than a writer's could delete an entry that writer's
 * records reference. The server always uses this default.
 */
export const AUDIT_DICTIONARY_SPAN = 100_000;

/**
 * Dictionary entries an audit store knows are stored, with the seq at which
 * it last recorded their use (committed), bounded: an entry that falls out
 * is recorded again (an idempotent upsert) when next needed. Only genuine
 * entries (id = content address) are ever kept, so a rewritten entry is
 * never used to expand.
 */
export class AuditDictionaryCache {
  readonly #entries = new Map<string, { value: string; used: number }>();
  readonly #max: number;
  /** The store's span (see {@link AUDIT_DICTIONARY_SPAN}). */
  readonly span: number;

  constructor(span = AUDIT_DICTIONARY_SPAN, max = 50_000) {
    // A negative span would let an archive run delete entries that online
    // records reference; 0 records every use (still correct, just more writes).
    if (!Number.isSafeInteger(span) || span < 0) {
      throw new RangeError('The audit dictionary span must be a non-negative integer.');
    }
    this.span = span;
    this.#max = max;
  }

  /** The stored value of `id`, if a batch ending at `seq` may reference it without recording its use again. */
  fresh(id: string, seq: number): string | undefined {
    const entry = this.#entries.get(id);
    return entry !== undefined && entry.used >= seq - this.span ? entry.value : undefined;
  }

  /** The bound below which an archive run with anchor `beforeSeq` deletes entries' last uses (see {@link AUDIT_DICTIONARY_SPAN}). */
  collectibleBelow(beforeSeq: number): number {
    return beforeSeq - this.span;
  }

  /** Notes that a committed batch recorded a use of `id` (holding `value`) at `used`. */
  add(id: string, value: string, used: number): void {
    if (!isAuditDictionaryEntry(id, value)) return;
    this.#entries.delete(id);
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(id, { value, used });
  }
}

/** The values a batch's compact forms would reference, by id (the entries to make sure of before the records). */
export function dictionaryCandidates(records: readonly AuditRecord[]): Map<string, string> {
  const wanted = new Map<string, string>();
  for (const r of records) {
    compactAuditEvent(
      r.event,
      (value) => {
        const id = auditDictionaryId(value);
        if (!wanted.has(id)) wanted.set(id, value);
        return id;
      },
      () => undefined,
    );
  }
  return wanted;
}

/** One row as the stores keep it: prev_hash derived where it can be, the event compact where it can be. */
export interface StoredAuditRow {
  readonly seq: number;
  readonly ts: string;
  readonly prevHash: string;
  readonly hash: string;
  readonly event: string;
}

/**
 * The rows to insert for `records`: each event in its compact form when
 * every entry it references is in `entries` (id → the value the store
 * holds); prev_hash left out (derived on read) when it is the hash of the
 * record stored before it (`before`: that record's hash, if known).
 */
export function toStoredRows(
  records: readonly AuditRecord[],
  entries: ReadonlyMap<string, string>,
  before: string | undefined,
): StoredAuditRow[] {
  let previous = before;
  return records.map((r) => {
    const event = compactAuditEvent(
      r.event,
      (value) => {
        const id = auditDictionaryId(value);
        return entries.get(id) === value ? id : undefined;
      },
      (id) => entries.get(id),
    );
    const derived = previous !== undefined && r.prevHash === previous && HEX_HASH.test(r.prevHash);
    previous = r.hash;
    return { seq: r.seq, ts: r.ts, prevHash: derived ? DERIVED_PREV_HASH : r.prevHash, hash: r.hash, event };
  });
}

/**
 * The dictionary ids the stored rows reference. Reads load them from the
 * table every time, never from the writer's cache: verification must see an
 * entry rewritten under a running node at once.
 */
export function referencedIds(rows: readonly { event: string }[]): string[] {
  const ids = new Set<string>();
  for (const row of rows) for (const id of auditEventRefs(row.event)) ids.add(id);
  return [...ids];
}

/** Entries read from the table, only the genuine ones (id = content address). */
export function genuineEntries(rows: Iterable<{ id: string; value: string }>): Map<string, string> {
  const entries = new Map<string, string>();
  for (const { id, value } of rows) if (isAuditDictionaryEntry(id, value)) entries.set(id, value);
  return entries;
}

/**
 * Stored rows back to records: events expanded to the full form that was
 * hashed, derived prev_hashes filled from the row before (`before`: the hash
 * of the row preceding the first, if it was read). A derived prev_hash whose
 * predecessor is missing reads as empty, which verification reports.
 */
export function fromStoredRows(
  rows: readonly StoredAuditRow[],
  entries: ReadonlyMap<string, string>,
  before: StoredAuditRow | undefined,
): AuditRecord[] {
  let previous = before;
  return rows.map((row) => {
    let prevHash = row.prevHash;
    if (prevHash === DERIVED_PREV_HASH) {
      if (row.seq === 1) prevHash = AUDIT_GENESIS_HASH;
      else if (previous !== undefined && previous.seq === row.seq - 1) prevHash = previous.hash;
    }
    previous = row;
    return {
      seq: row.seq,
      ts: row.ts,
      prevHash,
      hash: row.hash,
      event: expandAuditEvent(row.event, (id) => entries.get(id)),
    };
  });
}
