import { createHash } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
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
  /** The file to write (written to `<path>.partial` first, then renamed). */
  readonly path: string;
  /** Archive records sealed by a checkpoint signed before this time. */
  readonly before: Date;
  /** The preceding archive; none for the first archive (records from seq 1). */
  readonly previous?: AuditArchivePredecessor;
  /** Records read per batch from the store (default 1000): memory stays flat. */
  readonly batchSize?: number;
  readonly now?: () => Date;
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

  const partial = `${path}.partial`;
  const handle = await open(partial, 'w', 0o600);
  const content = createHash('sha256');
  const file = createHash('sha256');
  let bytes = 0;
  const gzip = createGzip();
  const flushed = new Promise<void>((resolve, reject) => {
    let writing = Promise.resolve();
    gzip.on('data', (chunk: Buffer) => {
      file.update(chunk);
      bytes += chunk.length;
      writing = writing.then(() => handle.write(chunk).then(() => undefined));
    });
    gzip.on('end', () => writing.then(resolve, reject));
    gzip.on('error', reject);
  });
  const put = async (line: string): Promise<void> => {
    const text = `${line}\n`;
    content.update(text);
    if (!gzip.write(text)) await new Promise<void>((resolve) => gzip.once('drain', resolve));
  };

  try {
    const archive = (previous?.archive ?? 0) + 1;
    const prevArchiveDigest = previous?.digest ?? AUDIT_ARCHIVE_GENESIS_DIGEST;
    const ts = now().toISOString();
    await put(
      formatAuditArchiveHeaderLine({
        version: 1,
        archive,
        anchor: previous?.checkpoint ?? null,
        prevArchiveDigest,
        ts,
      }),
    );
    const checkpoints = await checkpointsBetween(store, from, end.seq, batchSize);
    const keyIds = new Set(checkpoints.map((c) => c.keyId));
    let c = 0;
    let records = 0;
    let last: { seq: number; hash: string } | undefined;
    for (let next = from; next <= end.seq; ) {
      const batch = await store.range(next, Math.min(batchSize, end.seq - next + 1));
      if (batch.length === 0) break;
      for (const r of batch) {
        if (r.seq > end.seq) break;
        await put(formatAuditRecordLine(r));
        records++;
        last = r;
        while (c < checkpoints.length && checkpoints[c]!.seq <= r.seq)
          await put(formatAuditCheckpointLine(checkpoints[c++]!));
      }
      next = batch[batch.length - 1]!.seq + 1;
    }
    if (!last || last.seq !== end.seq || last.hash !== end.hash) {
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
    await rename(partial, path);
    await syncDirectory(dirname(path));
    return { manifest, checkpoint: end, digest: file.digest('hex'), bytes };
  } catch (error) {
    gzip.destroy();
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
