import { writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { AuditCheckpoint, AuditRecord } from '../ports/storage.js';
import { auditDictionaryId, auditEventRefs, compactAuditEvent } from './audit-compact.js';
import {
  type AuditFileLine,
  AuditFileLineReader,
  formatAuditDictionaryLine,
  formatCompactAuditRecordLine,
  parseAuditFileLine,
} from './audit-compact-line.js';
import { formatAuditCheckpointLine, formatAuditRecordLine } from './audit-line.js';
import type { AuditSink, AuditSinkTail } from './audit-sink.js';

export interface AuditFileSinkOptions {
  readonly path: string;
  /**
   * `'always'` (default): `fdatasync` after every batch, before the batch is
   * acknowledged. This is what makes the file a *durable* sink, one that may
   * acknowledge a request while the database is down. Group commit makes it
   * cheap: one sync per batch, not per event.
   * `'never'`: leave flushing to the OS. Faster, but a power loss can drop the
   * last records, so the sink is then not durable and never acknowledges a
   * batch on its own.
   */
  readonly fsync?: 'always' | 'never';
  /** File mode when created (default 0o600: audit metadata is sensitive even without secrets). */
  readonly mode?: number;
}

const NEWLINE = 0x0a;
const TAIL_CHUNK = 1 << 20;

/**
 * Appends records as JSON lines to one file opened in append mode, so writes
 * only ever go to its end. Records are written in their compact form (see
 * audit-compact-line.ts) with the dictionary entries they reference, each
 * entry once per opening of the file; a record that has no compact form is
 * written as a full line ({@link formatAuditRecordLine}).
 *
 * A line cut short by a crash was never acknowledged (the sync had not
 * returned), so opening the file cuts it off; a write that fails half-way
 * is likewise cut back, so a half line never sits in the middle of the file.
 */
export class AuditFileSink implements AuditSink {
  readonly name = 'file';
  readonly durable: boolean;
  readonly path: string;
  readonly #handle: FileHandle;
  readonly #sync: boolean;
  #size: number;
  /**
   * Dictionary entries written to this file since it was opened. Tied to the
   * open file: whoever starts a new file (rotation) must start a new set, so
   * every file defines the entries its records use.
   */
  #dictionary = new Map<string, string>();
  /** The last record line written since the file was opened: a record that follows it needs no prevHash. */
  #last: { readonly seq: number; readonly hash: string } | undefined;

  private constructor(path: string, handle: FileHandle, size: number, sync: boolean) {
    this.path = path;
    this.#handle = handle;
    this.#size = size;
    this.#sync = sync;
    this.durable = sync;
  }

  /** Opens (creating if needed) the file and cuts off a torn last line. */
  static async open(options: AuditFileSinkOptions): Promise<AuditFileSink> {
    const handle = await open(options.path, 'a+', options.mode ?? 0o600);
    try {
      const size = await completeLinesSize(handle);
      const { size: actual } = await handle.stat();
      if (size !== actual) await handle.truncate(size);
      return new AuditFileSink(options.path, handle, size, (options.fsync ?? 'always') === 'always');
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async write(records: readonly AuditRecord[]): Promise<void> {
    const added = new Map<string, string>();
    const known = (id: string) => this.#dictionary.get(id) ?? added.get(id);
    let last = this.#last;
    let text = '';
    for (const r of records) {
      const fresh = new Map<string, string>();
      const compact = compactAuditEvent(
        r.event,
        (value) => {
          const id = auditDictionaryId(value);
          const have = known(id) ?? fresh.get(id);
          if (have === undefined) fresh.set(id, value);
          // An id this file already holds for another value is not referenced: the record goes in full.
          return have === undefined || have === value ? id : undefined;
        },
        (id) => known(id) ?? fresh.get(id),
      );
      const follows = last !== undefined && last.seq === r.seq - 1 && last.hash === r.prevHash;
      const line = compact === r.event ? undefined : formatCompactAuditRecordLine(r, compact, follows);
      if (line === undefined) text += `${formatAuditRecordLine(r)}\n`;
      else {
        for (const id of auditEventRefs(compact)) {
          if (known(id) !== undefined) continue;
          const value = fresh.get(id)!;
          added.set(id, value);
          text += `${formatAuditDictionaryLine(id, value)}\n`;
        }
        text += `${line}\n`;
      }
      last = r;
    }
    await this.#append(text);
    // Only once written: a failed write was cut back, entries and all.
    for (const [id, value] of added) this.#dictionary.set(id, value);
    this.#last = last;
  }

  writeCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    return this.#append(`${formatAuditCheckpointLine(checkpoint)}\n`);
  }

  async recordsAfter(seq: number): Promise<AuditRecord[]> {
    // The lines after `seq`, and the record line at `seq` (a derived prevHash is its hash).
    const region: AuditFileLine[] = [];
    await this.#scanBack((line) => {
      region.push(line);
      return (line.kind === 'record' ? line.record.seq : line.kind === 'compact' ? line.seq : Infinity) <= seq;
    });
    region.reverse();
    const reader = new AuditFileLineReader();
    for (const [id, value] of this.#dictionary) reader.define(id, value);
    // Entries defined before the region (by an earlier run): looked for further back.
    const defined = new Set(region.flatMap((l) => (l.kind === 'dictionary' ? [l.id] : [])));
    const missing = new Set(
      region.flatMap((l) =>
        l.kind === 'compact'
          ? auditEventRefs(l.event).filter((id) => !this.#dictionary.has(id) && !defined.has(id))
          : [],
      ),
    );
    if (missing.size > 0) {
      await this.#scanBack((line) => {
        if (line.kind === 'dictionary' && missing.delete(line.id)) reader.define(line.id, line.value);
        return missing.size === 0;
      });
    }
    const found: AuditRecord[] = [];
    for (const line of region) {
      const parsed = reader.read(line);
      if (parsed?.kind === 'record' && parsed.record.seq > seq) found.push(parsed.record);
    }
    return found;
  }

  async lastRecordSeq(): Promise<number | undefined> {
    let last: number | undefined;
    await this.#scanBack((line) => {
      if (line.kind === 'record') last = line.record.seq;
      else if (line.kind === 'compact') last = line.seq;
      else return false;
      return true;
    });
    return last;
  }

  /**
   * The last record and checkpoint (see {@link AuditSink.tail}). The open
   * check compares the record's seq and hash only: a compact record is
   * returned as stored (its event compact, its prevHash empty when derived).
   */
  async tail(maxRecords: number): Promise<AuditSinkTail> {
    let record: AuditRecord | undefined;
    let checkpoint: AuditCheckpoint | undefined;
    let records = 0;
    await this.#scanBack((line) => {
      if (line.kind === 'dictionary') return false;
      if (line.kind === 'checkpoint') checkpoint ??= line.checkpoint;
      else {
        record ??=
          line.kind === 'record'
            ? line.record
            : { seq: line.seq, ts: line.ts, prevHash: line.prevHash ?? '', hash: line.hash, event: line.event };
        // Bounded: the file may be long, and an honest one has a checkpoint
        // line within one interval of its end.
        if (++records > maxRecords) return true;
      }
      return record !== undefined && checkpoint !== undefined;
    });
    return { ...(record ? { record } : {}), ...(checkpoint ? { checkpoint } : {}) };
  }

  /** Visits well-formed lines from the end of the file backwards until `stop` returns true. */
  async #scanBack(stop: (line: AuditFileLine) => boolean): Promise<void> {
    // Read in chunks from the end: the file can be large, and only its tail matters here.
    let end = this.#size;
    let carry = Buffer.alloc(0);
    while (end > 0) {
      const start = Math.max(0, end - TAIL_CHUNK);
      const chunk = Buffer.alloc(end - start);
      await this.#handle.read(chunk, 0, chunk.length, start);
      let data = Buffer.concat([chunk, carry]);
      carry = Buffer.alloc(0);
      if (start > 0) {
        // The chunk's first line may have begun earlier: keep it for the next (earlier) read.
        const firstNewline = data.indexOf(NEWLINE);
        if (firstNewline === -1) {
          carry = data;
          end = start;
          continue;
        }
        carry = data.subarray(0, firstNewline + 1);
        data = data.subarray(firstNewline + 1);
      }
      const lines = data
        .toString('utf8')
        .split('\n')
        .filter((l) => l.length > 0);
      for (let i = lines.length - 1; i >= 0; i--) {
        const parsed = parseAuditFileLine(lines[i]!);
        if (parsed && stop(parsed)) return;
      }
      end = start;
    }
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }

  async #append(text: string): Promise<void> {
    const buffer = Buffer.from(text, 'utf8');
    try {
      let offset = 0;
      while (offset < buffer.length) {
        // Without fsync a write only copies the batch into the page cache: done
        // in place it costs less than the thread-pool round trip, and the event
        // loop does not sit idle while every waiting request is in this batch.
        // With fsync the sync dominates and must not block the loop.
        offset += this.#sync
          ? (await this.#handle.write(buffer, offset, buffer.length - offset)).bytesWritten
          : writeSync(this.#handle.fd, buffer, offset, buffer.length - offset);
      }
      if (this.#sync) await this.#handle.datasync();
      this.#size += buffer.length;
    } catch (error) {
      // Cut back to the last complete batch so a later batch does not follow a torn line.
      await this.#handle.truncate(this.#size).catch(() => undefined);
      throw error;
    }
  }
}

/** Size of the file up to and including its last newline. */
async function completeLinesSize(handle: FileHandle): Promise<number> {
  const { size } = await handle.stat();
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK);
    const chunk = Buffer.alloc(end - start);
    await handle.read(chunk, 0, chunk.length, start);
    const last = chunk.lastIndexOf(NEWLINE);
    if (last !== -1) return start + last + 1;
    end = start;
  }
  return 0;
}
