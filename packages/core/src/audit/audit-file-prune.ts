import { open, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { parseAuditFileLine } from './audit-compact-line.js';

/** How far back from a file's end its last line is looked for (a checkpoint line is far shorter). */
const TAIL_BYTES = 64 * 1024;

/**
 * Removes the rotated audit files (`<base>-<time>-<number><ext>` beside the
 * audit file at `path`) whose records are all archived: their last seq is at
 * most `archivedThrough`, the last archive's final checkpoint. Called only
 * once that archive is durable (written, fsynced, recorded in the journal),
 * so nothing is lost: every record removed is in a signed archive.
 *
 * - The current file (`path` itself) is never touched, nor anything else in
 *   the directory (logrotate's names, `.next`, other files).
 * - Files go oldest first, and the first file not wholly archived (or whose
 *   last line cannot be read as a record or checkpoint) stops the pass: the
 *   files left always form an unbroken suffix of the sequence, which
 *   verifies from the first one's anchor (`custos audit verify --file`).
 * - Crash-safe: deleting is idempotent, and a file kept because the process
 *   died before removing it is removed by the next run.
 *
 * The last seq is read from the file's own last line (a rotated file ends
 * with the checkpoint that seals it). Whoever can rewrite the file could
 * have it removed early — but could delete it outright just as well; the
 * archive, not the file, is then the proof.
 */
export async function removeArchivedAuditFiles(path: string, archivedThrough: number): Promise<number> {
  const ext = extname(path);
  const base = basename(path, ext);
  const dir = dirname(path);
  const rotated = new RegExp(`^${escapeRegExp(base)}-\\d{8}T\\d{6}Z-\\d{6}${escapeRegExp(ext)}$`);
  const names = (await readdir(dir)).filter((n) => rotated.test(n)).sort();
  let removed = 0;
  for (const name of names) {
    const file = join(dir, name);
    const last = await lastSeqOf(file);
    if (last === undefined || last > archivedThrough) break;
    await unlink(file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    removed++;
  }
  return removed;
}

/** The seq of the last record or checkpoint line of a file, read from its tail; undefined when there is none. */
async function lastSeqOf(file: string): Promise<number | undefined> {
  const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!handle) return undefined;
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n');
    // The first piece may be cut mid-line (when the file is longer than the tail): never read it.
    const whole = length < size ? lines.slice(1) : lines;
    const last = whole.filter((l) => l.length > 0).at(-1);
    const parsed = last === undefined ? undefined : parseAuditFileLine(last);
    if (parsed?.kind === 'checkpoint') return parsed.checkpoint.seq;
    if (parsed?.kind === 'record') return parsed.record.seq;
    if (parsed?.kind === 'compact') return parsed.seq;
    return undefined;
  } finally {
    await handle.close();
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
