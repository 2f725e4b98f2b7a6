import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { type AuditArchiveProblem, readAuditArchiveManifest, verifyAuditArchives } from './audit-archive-verify.js';
import { auditCheckpointDigest } from './audit-checkpoint.js';
import { parseAuditFileLine } from './audit-compact-line.js';
import { parseAuditFileAnchorLine } from './audit-file-anchor.js';
import { type AuditFilesProblem, verifyAuditFiles } from './audit-files-verify.js';
import type { AuditChainVerifyOptions, AuditVerifyReport } from './audit-verify.js';

export type AuditArchivesAndFilesReport =
  | (Extract<AuditVerifyReport, { ok: true }> & {
      readonly archives: number;
      /** Records found in the archives (the rest of `events` is in the files, after the last archive). */
      readonly archivedEvents: number;
      /** Audit files verified after the archives. */
      readonly files: number;
      readonly unlinkedFiles: number;
    })
  | {
      readonly ok: false;
      readonly seq: number;
      readonly problem: AuditArchiveProblem | AuditFilesProblem;
      readonly detail: string;
      readonly events: number;
      readonly file?: string;
      readonly line?: number;
    };

/**
 * Verifies archives followed by the online audit files (rotated ones, then
 * the current one) as one chain, offline (docs/audit.md, "Verifying across
 * archives"): the archives as a sequence ({@link verifyAuditArchives}), the
 * files as a sequence ({@link verifyAuditFiles}), and the join between them.
 *
 * The join is the checkpoint the last archive ends at (seq L, its digest
 * signed in the manifest). The files must reach back to it — their first
 * record at or before L + 1 — else the records in between are in neither:
 * an archive after the last one given is missing (or the files that held
 * them). And the files must hold that same checkpoint (as a checkpoint line,
 * or as the first file's anchor): both chains verify against their signed
 * checkpoints, so one checkpoint in common makes them one chain. Records the
 * files still hold before L (a file not yet wholly archived) are verified
 * twice, which is harmless.
 */
export async function verifyAuditArchivesAndFiles(
  archives: readonly string[],
  files: readonly string[],
  options: Pick<AuditChainVerifyOptions, 'publicKeys' | 'defaultEvery'>,
): Promise<AuditArchivesAndFilesReport> {
  if (archives.length === 0 || files.length === 0) throw new TypeError('archives and audit files are both needed');
  const a = await verifyAuditArchives(archives, options);
  if (!a.ok) return a;
  const lastArchive = archives.at(-1)!;
  const manifest = await readAuditArchiveManifest(lastArchive);
  // verifyAuditArchives checked the manifest; a file changed since is caught here.
  if (!manifest) {
    return {
      ok: false,
      seq: a.lastSeq,
      problem: 'archive-truncated',
      detail: `${basename(lastArchive)} ends without its manifest`,
      events: a.events,
      file: lastArchive,
    };
  }
  const last = manifest.lastSeq;
  const first = files[0]!;
  const { start, firstRecord, checkpoints } = await fileCheckpoints(files);
  // The files' chain begins after their first anchor's checkpoint, or (no
  // anchor: an export, or files from before rotation) at their first record.
  const after = start > 0 ? start : Math.max(0, (firstRecord ?? 1) - 1);
  if (after > last) {
    return {
      ok: false,
      seq: last + 1,
      problem: 'archive-missing',
      detail: `records ${last + 1}–${after} are neither in the archives given (the last, ${basename(lastArchive)}, is archive ${manifest.archive}, up to seq ${last}) nor in the files (${basename(first)} starts after seq ${after}): archive ${manifest.archive + 1} or later, or the files before ${basename(first)}, are missing`,
      events: a.events,
      file: first,
    };
  }
  const joint = checkpoints.get(last);
  if (joint === undefined || joint.digest !== manifest.checkpointDigest) {
    return {
      ok: false,
      seq: last,
      problem: 'broken',
      detail:
        joint === undefined
          ? `the files hold no checkpoint at seq ${last}, where ${basename(lastArchive)} ends: they do not continue these archives`
          : `the checkpoint at seq ${last} in ${basename(joint.file)} is not the one ${basename(lastArchive)} ends at: they are not one chain`,
      events: a.events,
      file: joint?.file ?? first,
    };
  }
  // Files without an anchor that start after seq 1 are verified from their
  // first record as given (`partial`): sound here, because they reach back
  // to seq last + 1 (checked above) and hold the archives' last checkpoint,
  // whose hash their record at that seq must match — so every record after
  // the join chains to what the archives signed.
  const partial = start === 0 && after > 0;
  const f = await verifyAuditFiles(files, { ...options, ...(partial ? { partial: true } : {}) });
  if (!f.ok) return { ...f, events: a.events + f.events };
  const newer = [...checkpoints.keys()].filter((seq) => seq > last).length;
  return {
    ...f,
    events: a.archivedEvents + Math.max(0, f.lastSeq - last),
    checkpoints: a.checkpoints + newer,
    archives: a.archives,
    archivedEvents: a.archivedEvents,
  };
}

/**
 * Where the files' chain starts (the first file's anchor seq, else 0), the
 * first file's first record seq, and every checkpoint in them (with its file).
 */
async function fileCheckpoints(files: readonly string[]): Promise<{
  start: number;
  firstRecord: number | undefined;
  checkpoints: Map<number, { digest: string; file: string }>;
}> {
  const checkpoints = new Map<number, { digest: string; file: string }>();
  let start = 0;
  let firstRecord: number | undefined;
  for (const [i, file] of files.entries()) {
    let n = 0;
    for await (const line of createInterface({
      input: createReadStream(file, { encoding: 'utf8' }),
      crlfDelay: Number.POSITIVE_INFINITY,
    })) {
      n++;
      if (n === 1) {
        const anchor = parseAuditFileAnchorLine(line);
        if (anchor) {
          if (i === 0) start = anchor.checkpoint.seq;
          checkpoints.set(anchor.checkpoint.seq, { digest: auditCheckpointDigest(anchor.checkpoint), file });
          continue;
        }
      }
      const parsed = parseAuditFileLine(line);
      if (parsed?.kind === 'checkpoint') {
        checkpoints.set(parsed.checkpoint.seq, { digest: auditCheckpointDigest(parsed.checkpoint), file });
      } else if (i === 0 && firstRecord === undefined && (parsed?.kind === 'record' || parsed?.kind === 'compact')) {
        firstRecord = parsed.kind === 'record' ? parsed.record.seq : parsed.seq;
      }
    }
  }
  return { start, firstRecord, checkpoints };
}
