import type { AuditRecord } from '../ports/storage.js';
import { expandAuditEvent, isAuditDictionaryEntry, isCompactAuditEvent } from './audit-compact.js';
import { AUDIT_GENESIS_HASH } from './audit-hash.js';
import { type AuditLine, parseAuditLineValue } from './audit-line.js';

/**
 * The compact lines of the audit file (the file sink writes them; exports
 * keep the full lines of audit-line.ts). Besides the full record and
 * checkpoint lines, a file may hold:
 *
 *     {"d":"<id>","v":"<value>"}                       a dictionary entry
 *     {"s":9,"h":"<hash, base64url>","e":{"v":1,…}}    a record with a compact event
 *
 * A compact record line may also carry `"p"` (its prevHash, hex) when the
 * line before it in the file is not its predecessor (the first record after
 * the file was opened), and `"ts"` when its time is not the event's. An
 * entry is written before the first record that references it, once per
 * opening of the file (an entry written twice is the same entry: ids are
 * content addresses). A reader checks every entry against its id and
 * expands each compact event to the full canonical event that was hashed, so
 * an edited line or entry fails verification at the record that uses it.
 */
export type AuditFileLine =
  | AuditLine
  | { readonly kind: 'dictionary'; readonly id: string; readonly value: string }
  | {
      readonly kind: 'compact';
      readonly seq: number;
      readonly hash: string;
      readonly prevHash?: string;
      readonly ts: string;
      /** The compact event's text. */
      readonly event: string;
    };

const HEX_HASH = /^[0-9a-f]{64}$/;

/**
 * The compact line for a record whose event's compact form is `compact`;
 * `undefined` when the record's shape does not allow one (the full line is
 * written then). `follows`: the line before it in the file is its predecessor.
 */
export function formatCompactAuditRecordLine(
  record: AuditRecord,
  compact: string,
  follows: boolean,
): string | undefined {
  if (!isCompactAuditEvent(compact) || !HEX_HASH.test(record.hash) || !HEX_HASH.test(record.prevHash)) return undefined;
  if (!Number.isSafeInteger(record.seq) || record.seq < 1) return undefined;
  const t = (JSON.parse(compact) as { t: number }).t;
  const ts = new Date(t).toISOString() === record.ts ? '' : `,"ts":${JSON.stringify(record.ts)}`;
  const prev =
    follows || (record.seq === 1 && record.prevHash === AUDIT_GENESIS_HASH) ? '' : `,"p":"${record.prevHash}"`;
  const hash = Buffer.from(record.hash, 'hex').toString('base64url');
  return `{"s":${record.seq},"h":"${hash}"${prev}${ts},"e":${compact}}`;
}

/** The line for a dictionary entry. */
export function formatAuditDictionaryLine(id: string, value: string): string {
  return JSON.stringify({ d: id, v: value });
}

/** Parses one line of an audit file (full or compact); `undefined` when it is none of them. */
export function parseAuditFileLine(line: string): AuditFileLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.d === 'string' && typeof v.v === 'string' && Object.keys(v).length === 2) {
    return { kind: 'dictionary', id: v.d, value: v.v };
  }
  if (typeof v.e === 'object' && v.e !== null && typeof v.h === 'string') {
    const seq = v.s;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return undefined;
    const hash = Buffer.from(v.h, 'base64url');
    if (hash.length !== 32 || hash.toString('base64url') !== v.h) return undefined;
    if (v.p !== undefined && (typeof v.p !== 'string' || !HEX_HASH.test(v.p))) return undefined;
    if (v.ts !== undefined && typeof v.ts !== 'string') return undefined;
    const event = JSON.stringify(v.e);
    const t = (v.e as { t?: unknown }).t;
    const time = typeof t === 'number' && Number.isFinite(new Date(t).getTime()) ? new Date(t).toISOString() : '';
    return {
      kind: 'compact',
      seq,
      hash: hash.toString('hex'),
      ...(v.p !== undefined ? { prevHash: v.p } : {}),
      ts: (v.ts as string | undefined) ?? time,
      event,
    };
  }
  return parseAuditLineValue(v);
}

/**
 * Reads the lines of an audit file in order and gives back full records and
 * checkpoints: dictionary entries are collected (only genuine ones), compact
 * events expanded, derived prevHashes filled from the record line before.
 */
export class AuditFileLineReader {
  readonly #dictionary = new Map<string, string>();
  #last: { readonly seq: number; readonly hash: string } | undefined;

  /** Takes an entry found elsewhere (an earlier part of the file). */
  define(id: string, value: string): void {
    if (isAuditDictionaryEntry(id, value)) this.#dictionary.set(id, value);
  }

  /** The line as a record or checkpoint; `undefined` for a dictionary line. */
  read(line: AuditFileLine): AuditLine | undefined {
    if (line.kind === 'dictionary') {
      this.define(line.id, line.value);
      return undefined;
    }
    if (line.kind === 'checkpoint') return line;
    if (line.kind === 'record') {
      this.#last = line.record;
      return line;
    }
    let prevHash = line.prevHash;
    if (prevHash === undefined) {
      if (line.seq === 1) prevHash = AUDIT_GENESIS_HASH;
      else prevHash = this.#last?.seq === line.seq - 1 ? this.#last.hash : '';
    }
    const record: AuditRecord = {
      seq: line.seq,
      ts: line.ts,
      prevHash,
      hash: line.hash,
      event: expandAuditEvent(line.event, (id) => this.#dictionary.get(id)),
    };
    this.#last = record;
    return { kind: 'record', record };
  }
}
