import { writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { AuditCheckpoint, AuditRecord } from '../ports/storage.js';
import { type AuditLine, formatAuditCheckpointLine, formatAuditRecordLine, parseAuditLine } from './audit-line.js';
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
 * Appends records as JSON lines (see {@link formatAuditRecordLine}) to one
 * file opened in append mode, so writes only ever go to its end.
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

  write(records: readonly AuditRecord[]): Promise<void> {
    return this.#append(records.map((r) => `${formatAuditRecordLine(r)}\n`).join(''));
  }

  writeCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    return this.#append(`${formatAuditCheckpointLine(checkpoint)}\n`);
  }

  async recordsAfter(seq: number): Promise<AuditRecord[]> {
    const found: AuditRecord[] = [];
    await this.#scanBack((line) => {
      if (line.kind !== 'record') return false;
      if (line.record.seq <= seq) return true;
      found.push(line.record);
      return false;
    });
    return found.reverse();
  }

  async lastRecordSeq(): Promise<number | undefined> {
    let last: number | undefined;
    await this.#scanBack((line) => {
      if (line.kind !== 'record') return false;
      last = line.record.seq;
      return true;
    });
    return last;
  }

  async tail(maxRecords: number): Promise<AuditSinkTail> {
    let record: AuditRecord | undefined;
    let checkpoint: AuditCheckpoint | undefined;
    let records = 0;
    await this.#scanBack((line) => {
      if (line.kind === 'checkpoint') checkpoint ??= line.checkpoint;
      else {
        record ??= line.record;
        // Bounded: the file may be long, and an honest one has a checkpoint
        // line within one interval of its end.
        if (++records > maxRecords) return true;
      }
      return record !== undefined && checkpoint !== undefined;
    });
    return { ...(record ? { record } : {}), ...(checkpoint ? { checkpoint } : {}) };
  }

  /** Visits well-formed lines from the end of the file backwards until `stop` returns true. */
  async #scanBack(stop: (line: AuditLine) => boolean): Promise<void> {
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
        const parsed = parseAuditLine(lines[i]!);
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
