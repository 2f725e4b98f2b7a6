import { createHash } from 'node:crypto';
import { type FileHandle, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

/** When the file sink starts a new file (see {@link AuditFileSink}). */
export interface AuditFileRotation {
  /** Rotate once the file holds at least this many bytes (soft: at the next checkpoint that seals the file). */
  readonly maxBytes?: number;
  /** Rotate once the file is this old (ms; soft likewise). */
  readonly everyMs?: number;
}

/**
 * The name a rotated file gets: `audit.jsonl` → `audit-<UTC time>-<file number>.jsonl`,
 * e.g. `audit-20261204T162700Z-000003.jsonl`. Fixed width, so a shell glob
 * (`audit-*.jsonl audit.jsonl`) lists the files in their order, and the
 * current file (`audit.jsonl`, `.` after `-`) last.
 */
export function rotatedAuditFileName(path: string, at: Date, file: number): string {
  const ext = extname(path);
  const base = basename(path, ext);
  const stamp = at
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  return join(dirname(path), `${base}-${stamp}-${String(file).padStart(6, '0')}${ext}`);
}

const ROTATED = /-\d{8}T\d{6}Z-\d{6}\.[^.]+$/;

/**
 * The audit files in a directory in their sequence order: the rotated ones
 * (`<base>-<time>-<number>.<ext>`) by name, which is by number, then the
 * current ones. Only `.jsonl` files; anything else there is ignored.
 */
export async function auditFilesInDirectory(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.jsonl')).sort();
  return [...names.filter((n) => ROTATED.test(n)), ...names.filter((n) => !ROTATED.test(n))].map((n) => join(dir, n));
}

/** The side file a new file's anchor is prepared in before it replaces the current file. */
export function nextAuditFilePath(path: string): string {
  return `${path}.next`;
}

/**
 * Finishes or undoes a rotation a crash interrupted, before the file is opened.
 * A rotation is: (1) the new file's anchor written to `<path>.next` and
 * synced; (2) the current file renamed away (by the sink, or earlier by
 * logrotate); (3) `<path>.next` renamed to `<path>`. So a `.next` file with
 * no file at `path` (or an empty one, as logrotate's `create` leaves) is a
 * rotation cut between (2) and (3): it is finished. A `.next` file beside a
 * non-empty one was cut before (2): it is removed and the rotation happens
 * again at the next checkpoint. Either way no record is lost or written twice:
 * records are only ever appended to the file at `path`.
 */
export async function recoverAuditFileRotation(path: string): Promise<'none' | 'finished' | 'undone'> {
  const next = nextAuditFilePath(path);
  const pending = await stat(next).catch(() => undefined);
  if (!pending) return 'none';
  const current = await stat(path).catch(() => undefined);
  if (current && current.size > 0) {
    await unlink(next);
    return 'undone';
  }
  await rename(next, path);
  await syncDirectory(dirname(path));
  return 'finished';
}

/** Makes renames in `dir` durable (a rename is only as durable as its directory entry). */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** SHA-256 (hex) of the first `size` bytes of an open file, read in chunks. */
export async function digestAuditFile(handle: FileHandle, size: number): Promise<string> {
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(Math.min(size, 1 << 20));
  for (let at = 0; at < size; ) {
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - at), at);
    if (bytesRead === 0) throw new Error('the audit file is shorter than written');
    hash.update(chunk.subarray(0, bytesRead));
    at += bytesRead;
  }
  return hash.digest('hex');
}
