import { createHash, randomBytes } from 'node:crypto';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createGzip } from 'node:zlib';
import type { AuditCheckpoint, AuditStore } from '../ports/storage.js';
import {
  AUDIT_ARCHIVE_GENESIS_DIGEST,
  type AuditArchiveManifest,
  formatAuditArchiveHeaderLine,
  formatAuditArchiveManifestLine,
  signAuditArchiveManifest,
} from './audit-archive-format.js';
import { type AuditSigner, auditCheckpointDigest } from './audit-checkpoint.js';
import { syncDirectory } from './audit-file-rotation.js';
import { formatAuditCheckpointLine, formatAuditRecordLine } from './audit-line.js';

/** How an archive being written is named until it is complete (`<name>.<random>.partial`). */
export const AUDIT_ARCHIVE_PARTIAL_SUFFIX = '.partial';

/**
 * Removes the temporary files of archive writes that were killed (their
 * process died before renaming or unlinking them) and are older than
 * `olderThanMs`. Only the lease holder calls this, so no other write is in
 * progress (a run that lost its lease ends at its next batch and never
 * renames); a paced write can leave its file untouched for a while, so the
 * age is a second guard, not the first. Returns how many were removed.
 */
export async function removeStaleArchivePartials(dir: string, olderThanMs: number, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith('audit-archive-') || !name.endsWith(AUDIT_ARCHIVE_PARTIAL_SUFFIX)) continue;
    const file = join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (!info || now - info.mtimeMs < olderThanMs) continue;
    await unlink(file).catch(() => undefined);
    removed++;
  }
  return removed;
}

/** Where the preceding archive ended: what the next archive links to (kept online, see docs/audit.md). */
export interface AuditArchivePredecessor {
  readonly archive: number;
  /** The checkpoint that sealed its last record. */
  readonly checkpoint: AuditCheckpoint;
  /** SHA-256 of its file bytes. */
  readonly digest: string;
}

export interface AuditArchiveWriteOptions {
  readonly store: AuditStore;
  readonly signer: AuditSigner;
  /** The file to write (written to `<path>.<random>.partial` first, then renamed). */
  readonly path: string;
  /** Archive records sealed by a checkpoint signed before this time. */
  readonly before: Date;
  /** The preceding archive; none for the first archive (records from seq 1). */
  readonly previous?: AuditArchivePredecessor;
  /** Records read per batch from the store (default 1000): memory stays flat. */
  readonly batchSize?: number;
  readonly now?: () => Date;
  /**
   * Called once the archive is complete and fsynced under its temporary
   * name, just before it takes its real name; throwing leaves nothing
   * behind. The run checks here that it still holds the archival lease and
   * that no other run archived meanwhile, so a run that stalled past its
   * lease never replaces another node's archive.
   */
  readonly beforeRename?: () => Promise<void>;
  /**
   * Called after each batch is handed to gzip with the records written so
   * far and the archive's total: the run renews its lease and keeps its pace
   * here (audit-archive-pace.ts); throwing leaves nothing behind.
   */
  readonly onBatch?: (written: number, total: number) => Promise<void>;
}

/** What was archived: the manifest, and the file's size and SHA-256 (the next archive's `prevArchiveDigest`). */
export interface AuditArchiveWritten {
  readonly manifest: AuditArchiveManifest;
  readonly checkpoint: AuditCheckpoint;
  readonly digest: string;
  readonly bytes: number;
}

/**
 * Writes the records after `previous` up to the last checkpoint signed
 * before `before` to a gzip archive at `path`, durably (written under a
 * temporary name, fsynced, renamed, the directory fsynced), and returns its
 * manifest. Returns `undefined` (and writes nothing) when no checkpoint
 * beyond `previous` was signed before `before`. Reads the store in batches;
 * deletes nothing (removal is a separate step, after this returns).
 *
 * An archive always ends at a checkpoint: its records verify on their own
 * up to a signed statement, and the online chain resumes from it.
 */
export async function writeAuditArchive(options: AuditArchiveWriteOptions): Promise<AuditArchiveWritten | undefined> {
  const { store, signer, path, previous } = options;
  const batchSize = options.batchSize ?? 1000;
  const now = options.now ?? (() => new Date());
  const from = (previous?.checkpoint.seq ?? 0) + 1;
  const end = await lastCheckpointBefore(store, from, options.before, batchSize);
  if (!end) return undefined;

  // A name of its own per run: two runs (one stalled past its lease) never write into one file.
  const partial = `${path}.${randomBytes(6).toString('hex')}${AUDIT_ARCHIVE_PARTIAL_SUFFIX}`;
  const handle = await open(partial, 'w', 0o600);
  const content = createHash('sha256');
  const file = createHash('sha256');
  let bytes = 0;
  const gzip = createGzip({ chunkSize: 64 * 1024 });
  // The file writes of gzip's output, in order. Awaited on failure too,
  // before the handle closes: a write still queued would otherwise fail on
  // the closed handle with nobody to hear it (an unhandled rejection).
  let writing = Promise.resolve();
  const flushed = new Promise<void>((resolve, reject) => {
    gzip.on('data', (chunk: Buffer) => {
      file.update(chunk);
      bytes += chunk.length;
      writing = writing.then(() => handle.write(chunk).then(() => undefined));
      // Heard at the end (or on failure, below), not here: a failed write
      // (ENOSPC, as the disk guard archives) must fail the run, not the process.
      writing.catch(() => undefined);
    });
    gzip.on('end', () => writing.then(resolve, reject));
    gzip.on('error', reject);
  });
  // Lines go to gzip a store batch at a time, not one by one: each write to a
  // zlib stream is its own round trip to the thread pool, and on a busy node
  // every round trip waits behind the queued requests — line by line, an
  // archive of a few hundred thousand records took longer than the records
  // took to arrive (the soak in BENCHMARKS.md).
  const put = async (lines: string): Promise<void> => {
    content.update(lines);
    if (!gzip.write(lines)) await new Promise<void>((resolve) => gzip.once('drain', resolve));
  };

  try {
    const archive = (previous?.archive ?? 0) + 1;
    const prevArchiveDigest = previous?.digest ?? AUDIT_ARCHIVE_GENESIS_DIGEST;
    const ts = now().toISOString();
    await put(
      `${formatAuditArchiveHeaderLine({
        version: 1,
        archive,
        anchor: previous?.checkpoint ?? null,
        prevArchiveDigest,
        ts,
      })}\n`,
    );
    const checkpoints = await checkpointsBetween(store, from, end.seq, batchSize);
    const keyIds = new Set(checkpoints.map((c) => c.keyId));
    let c = 0;
    let records = 0;
    let last: { seq: number; hash: string } | undefined;
    for (let next = from; next <= end.seq; ) {
      const batch = await store.range(next, Math.min(batchSize, end.seq - next + 1));
      if (batch.length === 0) break;
      let lines = '';
      for (const r of batch) {
        if (r.seq > end.seq) break;
        lines += `${formatAuditRecordLine(r)}\n`;
        records++;
        last = r;
        while (c < checkpoints.length && checkpoints[c]!.seq <= r.seq)
          lines += `${formatAuditCheckpointLine(checkpoints[c++]!)}\n`;
      }
      await put(lines);
      await options.onBatch?.(records, end.seq - from + 1);
      next = batch[batch.length - 1]!.seq + 1;
    }
    // Every seq from..end exactly once (the store reads in seq order): a gap
    // — records deleted by a run that should not have — is never archived as if whole.
    if (!last || last.seq !== end.seq || last.hash !== end.hash || records !== end.seq - from + 1) {
      // The store does not hold the records the checkpoint seals: archiving them would archive a broken chain.
      throw new Error(`the audit store does not hold records ${from}–${end.seq} sealed by checkpoint ${end.seq}`);
    }
    const manifest = signAuditArchiveManifest(signer, {
      archive,
      firstSeq: from,
      lastSeq: last.seq,
      lastHash: last.hash,
      records,
      checkpointDigest: auditCheckpointDigest(end),
      prevArchiveDigest,
      contentDigest: content.digest('hex'),
      keyIds: [...keyIds].sort(),
      ts,
    });
    gzip.end(`${formatAuditArchiveManifestLine(manifest)}\n`);
    await flushed;
    await handle.sync();
    await handle.close();
    await options.beforeRename?.();
    await rename(partial, path);
    await syncDirectory(dirname(path));
    return { manifest, checkpoint: end, digest: file.digest('hex'), bytes };
  } catch (error) {
    gzip.destroy();
    flushed.catch(() => undefined);
    await writing.catch(() => undefined);
    await handle.close().catch(() => undefined);
    await unlink(partial).catch(() => undefined);
    throw error;
  }
}

/** The last checkpoint at or after seq `from` signed before `before`. */
async function lastCheckpointBefore(
  store: AuditStore,
  from: number,
  before: Date,
  batchSize: number,
): Promise<AuditCheckpoint | undefined> {
  let found: AuditCheckpoint | undefined;
  for (let next = from; ; ) {
    const batch = await store.checkpointsFrom(next, batchSize);
    for (const c of batch) {
      if (Date.parse(c.ts) >= before.getTime()) return found;
      found = c;
    }
    if (batch.length < batchSize) return found;
    next = batch[batch.length - 1]!.seq + 1;
  }
}

async function checkpointsBetween(store: AuditStore, from: number, to: number, batchSize: number) {
  const found: AuditCheckpoint[] = [];
  for (let next = from; next <= to; ) {
    const batch = await store.checkpointsFrom(next, batchSize);
    for (const c of batch) if (c.seq <= to) found.push(c);
    if (batch.length < batchSize || batch[batch.length - 1]!.seq >= to) break;
    next = batch[batch.length - 1]!.seq + 1;
  }
  return found;
}
