import { writeSync } from 'node:fs';
import { type FileHandle, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditCheckpoint, AuditRecord } from '../ports/storage.js';
import type { AuditSigner } from './audit-checkpoint.js';
import { auditDictionaryId, auditEventRefs, compactAuditEvent } from './audit-compact.js';
import {
  type AuditFileLine,
  AuditFileLineReader,
  formatAuditDictionaryLine,
  formatCompactAuditRecordLine,
  parseAuditFileLine,
} from './audit-compact-line.js';
import {
  AUDIT_ANCHOR_UNLINKED,
  type AuditFileAnchor,
  formatAuditFileAnchorLine,
  parseAuditFileAnchorLine,
  signAuditFileAnchor,
} from './audit-file-anchor.js';
import {
  type AuditFileRotation,
  digestAuditFile,
  nextAuditFilePath,
  recoverAuditFileRotation,
  rotatedAuditFileName,
  syncDirectory,
} from './audit-file-rotation.js';
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
  /**
   * The checkpoint key, which signs each new file's anchor. Without it the
   * sink never starts a new file itself ({@link rotation} and
   * {@link AuditFileSink.reopen} need it).
   */
  readonly signer?: AuditSigner;
  /** Rotate by size and/or age (needs {@link signer}). */
  readonly rotation?: AuditFileRotation;
  /** Told the name a file was rotated to (`undefined` when it was renamed by someone else, e.g. logrotate). */
  readonly onRotate?: (event: { readonly rotatedTo?: string; readonly file: number }) => void;
  /** Clock (tests). */
  readonly now?: () => Date;
  /**
   * Test seam for crash tests: awaited at each step of a rotation, so a test
   * child can SIGKILL itself exactly there. Never set in production.
   */
  readonly rotationStep?: (step: 'anchor-written' | 'renamed') => void | Promise<void>;
}

/** Why the file is to be replaced at the next checkpoint that seals it. */
type RotationRequest = 'rotate' | 'reopen';

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
 *
 * **Rotation.** With a signer, the sink starts a new file when the current one
 * passes `rotation.maxBytes` or `rotation.everyMs`, when {@link rotateSoon}
 * asks (the disk guard), or, after someone else renamed the file away
 * (logrotate), when {@link reopen} is called (SIGHUP). It does so only right
 * after writing a checkpoint that seals the file's last record: the new file
 * begins with an anchor (see `audit-file-anchor.ts`) holding that checkpoint
 * and the digest of the file it follows, so each file verifies on its own
 * from its anchor and the files verify as one sequence. Limits are therefore
 * soft: a file ends at most one checkpoint interval past them. A rotation is
 * crash-safe (see `recoverAuditFileRotation`), and it holds up the writer for
 * one read of the closed file (its digest) and a few syncs, no more.
 */
export class AuditFileSink implements AuditSink {
  readonly name = 'file';
  readonly durable: boolean;
  readonly path: string;
  /** With a signer, a new file starts at the last checkpoint, as its anchor. */
  readonly startsAtCheckpoint: boolean;
  readonly #options: AuditFileSinkOptions;
  readonly #sync: boolean;
  readonly #now: () => Date;
  #handle: FileHandle;
  #size: number;
  /** This file's number in the sequence (its anchor's `file`; 0 for a file without one). */
  #file: number;
  /** When this file began (its anchor's time, else its creation or opening), for `rotation.everyMs`. */
  #startedAt: number;
  /** The last record in this file (or, in a file with none yet, its anchor's seq). */
  #lastSeq: number | undefined;
  /** The last checkpoint in this file (or its anchor's). */
  #lastCheckpoint: AuditCheckpoint | undefined;
  #request: RotationRequest | undefined;
  #bytesWritten = 0;
  /** Serialises writes with rotations asked for from outside the writer (SIGHUP, the disk guard). */
  #queue: Promise<unknown> = Promise.resolve();
  /**
   * Dictionary entries written to this file since it was opened. Tied to the
   * open file: whoever starts a new file (rotation) must start a new set, so
   * every file defines the entries its records use.
   */
  #dictionary = new Map<string, string>();
  /** The last record line written since the file was opened: a record that follows it needs no prevHash. */
  #last: { readonly seq: number; readonly hash: string } | undefined;

  private constructor(options: AuditFileSinkOptions, handle: FileHandle, size: number, sync: boolean) {
    this.path = options.path;
    this.#options = options;
    this.#handle = handle;
    this.#size = size;
    this.#sync = sync;
    this.durable = sync;
    this.startsAtCheckpoint = options.signer !== undefined;
    this.#now = options.now ?? (() => new Date());
    this.#file = 0;
    this.#startedAt = this.#now().getTime();
  }

  /**
   * Opens (creating if needed) the file and cuts off a torn last line, after
   * finishing or undoing a rotation a crash interrupted.
   */
  static async open(options: AuditFileSinkOptions): Promise<AuditFileSink> {
    if (options.rotation && !options.signer) throw new TypeError('audit file rotation needs the checkpoint signer');
    await recoverAuditFileRotation(options.path);
    const handle = await open(options.path, 'a+', options.mode ?? 0o600);
    let sink: AuditFileSink;
    try {
      const size = await completeLinesSize(handle);
      const { size: actual } = await handle.stat();
      if (size !== actual) await handle.truncate(size);
      sink = new AuditFileSink(options, handle, size, (options.fsync ?? 'always') === 'always');
      await sink.#learnFile();
    } catch (error) {
      await handle.close();
      throw error;
    }
    return sink;
  }

  /** Reads what rotation needs to know of the opened file: its anchor, last record and last checkpoint. */
  async #learnFile(): Promise<void> {
    const first = await this.#firstLine();
    const anchor = first === undefined ? undefined : parseAuditFileAnchorLine(first);
    // The file's age counts from its anchor, or its first record: a restart does not reset it.
    const record = first === undefined || anchor ? undefined : parseAuditFileLine(first);
    const began = anchor
      ? Date.parse(anchor.ts)
      : record?.kind === 'record'
        ? Date.parse(record.record.ts)
        : record?.kind === 'compact'
          ? Date.parse(record.ts)
          : Number.NaN;
    if (anchor) this.#file = anchor.file;
    if (Number.isFinite(began)) this.#startedAt = began;
    // Bounded like the open check's scan: an honest file has a checkpoint near its end, and
    // one found later (the next checkpoint written) serves rotation just as well.
    const tail = await this.tail(100_000);
    this.#lastSeq = tail.record?.seq ?? anchor?.checkpoint.seq;
    this.#lastCheckpoint = tail.checkpoint;
  }

  /** The anchor on the file's first line, if it has one. */
  async #readAnchor(): Promise<AuditFileAnchor | undefined> {
    const first = await this.#firstLine();
    return first === undefined ? undefined : parseAuditFileAnchorLine(first);
  }

  /** The file's first line (anchors and records are far below 64 KiB). */
  async #firstLine(): Promise<string | undefined> {
    if (this.#size === 0) return undefined;
    const head = Buffer.alloc(Math.min(this.#size, 64 * 1024));
    await this.#handle.read(head, 0, head.length, 0);
    const newline = head.indexOf(NEWLINE);
    return newline === -1 ? undefined : head.subarray(0, newline).toString('utf8');
  }

  /** This file's number in the rotation sequence (0 until the first rotation). */
  get fileNumber(): number {
    return this.#file;
  }

  /** Bytes in the current file. */
  get size(): number {
    return this.#size;
  }

  /** Bytes appended since opened, across rotations (the disk guard's growth rate). */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  write(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return this.#serial(() => this.#writeRecords(records));
  }

  async #writeRecords(records: readonly AuditRecord[]): Promise<void> {
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
    this.#lastSeq = records[records.length - 1]!.seq;
  }

  writeCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    return this.#serial(async () => {
      const signer = this.#options.signer;
      if (this.#size === 0 && signer) {
        // A file that starts in the middle of the chain (new, emptied, or
        // renamed away by logrotate while the process was down) begins at
        // this checkpoint, as an anchor: it then verifies on its own. Its
        // predecessor is unknown here, so the anchor says so.
        const anchor = signAuditFileAnchor(signer, {
          file: this.#file,
          checkpoint,
          prevFileDigest: AUDIT_ANCHOR_UNLINKED,
          prevFileBytes: 0,
          ts: this.#now().toISOString(),
        });
        await this.#append(`${formatAuditFileAnchorLine(anchor)}\n`);
        this.#lastSeq = checkpoint.seq;
      } else await this.#append(`${formatAuditCheckpointLine(checkpoint)}\n`);
      this.#lastCheckpoint = checkpoint;
      if (this.#rotationDue()) await this.#rotateIfSealed();
    });
  }

  /**
   * For logrotate: the file at {@link path} was renamed away; start a new
   * one there, anchored to the renamed one (which this sink still holds
   * open). Done at once when the renamed file ends with a checkpoint,
   * otherwise right after the next one; until then records go on into the
   * renamed file, so nothing is lost. Nothing happens when the file was not
   * renamed.
   */
  reopen(): Promise<void> {
    return this.#serial(async () => {
      const current = await stat(this.path).catch(() => undefined);
      const open = await this.#handle.stat();
      if (current && current.size > 0 && current.ino === open.ino && current.dev === open.dev) return;
      this.#request = 'reopen';
      await this.#rotateIfSealed();
    });
  }

  /** Starts a new file (rotated to the usual name) after the next checkpoint, whatever the limits say. */
  rotateSoon(): void {
    this.#request ??= 'rotate';
  }

  #rotationDue(): boolean {
    if (!this.#options.signer) return false;
    if (this.#request) return true;
    const rotation = this.#options.rotation;
    if (!rotation) return false;
    if (rotation.maxBytes !== undefined && this.#size >= rotation.maxBytes) return true;
    return rotation.everyMs !== undefined && this.#now().getTime() - this.#startedAt >= rotation.everyMs;
  }

  /** Rotates when the file's last record is sealed by its last checkpoint (else waits for the next one). */
  async #rotateIfSealed(): Promise<void> {
    const checkpoint = this.#lastCheckpoint;
    if (!checkpoint || checkpoint.seq !== this.#lastSeq || !this.#options.signer) return;
    // Renamed away already (logrotate), whatever was asked: the file at `path` is not this one.
    const there = await stat(this.path).catch(() => undefined);
    const open = await this.#handle.stat();
    const renamed = !there || there.ino !== open.ino || there.dev !== open.dev;
    await this.#rotate(checkpoint, this.#options.signer, renamed ? 'renamed' : 'rename');
  }

  /**
   * Replaces the current file with a new one that begins with an anchor to it.
   * Steps (each durable before the next; see `recoverAuditFileRotation` for
   * a crash between them): the anchor is written to `<path>.next` and
   * synced; the current file is renamed to its rotated name (unless
   * logrotate did that already); `<path>.next` is renamed to `<path>`.
   */
  async #rotate(checkpoint: AuditCheckpoint, signer: AuditSigner, mode: 'rename' | 'renamed'): Promise<void> {
    const now = this.#now();
    const anchor = signAuditFileAnchor(signer, {
      file: this.#file + 1,
      checkpoint,
      prevFileDigest: await digestAuditFile(this.#handle, this.#size),
      prevFileBytes: this.#size,
      ts: now.toISOString(),
    });
    const next = nextAuditFilePath(this.path);
    const fileMode = this.#options.mode ?? 0o600;
    const staged = await open(next, 'w', fileMode);
    try {
      await staged.writeFile(`${formatAuditFileAnchorLine(anchor)}\n`);
      await staged.sync();
    } finally {
      await staged.close();
    }
    await this.#options.rotationStep?.('anchor-written');
    let rotatedTo: string | undefined;
    if (mode === 'rename') {
      rotatedTo = rotatedAuditFileName(this.path, now, this.#file);
      await rename(this.path, rotatedTo);
    } else {
      // logrotate may have left a new empty file (its `create`); anything else there is not ours to replace.
      const there = await stat(this.path).catch(() => undefined);
      if (there && there.size > 0) {
        await unlink(next);
        this.#request = undefined;
        throw new Error("a non-empty file is in the audit file's place; not reopening");
      }
    }
    await this.#options.rotationStep?.('renamed');
    await rename(next, this.path);
    await syncDirectory(dirname(this.path));
    const handle = await open(this.path, 'a+', fileMode);
    const { size } = await handle.stat();
    const old = this.#handle;
    this.#handle = handle;
    this.#size = size;
    this.#file = anchor.file;
    this.#startedAt = now.getTime();
    this.#lastSeq = checkpoint.seq;
    // A new file defines the dictionary entries its records use, and its first record carries its prevHash.
    this.#dictionary = new Map();
    this.#last = undefined;
    this.#request = undefined;
    await old.close().catch(() => undefined);
    this.#options.onRotate?.({ file: anchor.file, ...(rotatedTo ? { rotatedTo } : {}) });
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
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
    // A file with only its anchor continues the chain from the anchor's checkpoint.
    return last ?? (await this.#readAnchor())?.checkpoint.seq;
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
    // The anchor's checkpoint is this file's first: the last one when no other follows it.
    if (!checkpoint && records <= maxRecords) checkpoint = (await this.#readAnchor())?.checkpoint;
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

  close(): Promise<void> {
    return this.#serial(() => this.#handle.close());
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
      this.#bytesWritten += buffer.length;
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
