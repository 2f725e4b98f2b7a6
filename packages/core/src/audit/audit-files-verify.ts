import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { AuditCheckpoint, AuditRecord } from '../ports/storage.js';
import { auditCheckpointDigest } from './audit-checkpoint.js';
import { AuditFileLineReader, parseAuditFileLine } from './audit-compact-line.js';
import {
  AUDIT_ANCHOR_UNLINKED,
  type AuditFileAnchor,
  parseAuditFileAnchorLine,
  verifyAuditFileAnchorSignature,
} from './audit-file-anchor.js';
import {
  type AuditChainVerifyOptions,
  type AuditVerifyProblem,
  type AuditVerifyReport,
  verifyAuditChain,
} from './audit-verify.js';

/**
 * What is wrong with a file of a rotated sequence, besides the chain problems
 * of {@link AuditVerifyProblem}:
 * - `file-missing`: the files' numbers skip one or more between two given files.
 * - `file-reordered`: a file comes before one it follows (its number is not above the previous one's).
 * - `file-altered`: a file differs from what its successor's anchor pinned (edited or truncated after rotation).
 * - `anchor-missing`: a file after the first does not begin with an anchor, so it is not a rotated successor.
 * - `anchor-invalid`: an anchor's signature does not verify, or it names a checkpoint other than its predecessor's last.
 */
export type AuditFilesProblem =
  | AuditVerifyProblem
  | 'file-missing'
  | 'file-reordered'
  | 'file-altered'
  | 'anchor-missing'
  | 'anchor-invalid';

/** The outcome of verifying one file or a sequence of rotated files. */
export type AuditFilesVerifyReport =
  | (Extract<AuditVerifyReport, { ok: true }> & {
      /** Files verified. */
      readonly files: number;
      /** Of those after the first, files whose anchor could not pin their predecessor (see docs/audit.md). */
      readonly unlinkedFiles: number;
    })
  | {
      readonly ok: false;
      readonly seq: number;
      readonly problem: AuditFilesProblem;
      readonly detail: string;
      readonly events: number;
      /** The file where the problem is (as given). */
      readonly file?: string;
      /** Its line (1-based) where the problem was found, when one line is to blame. */
      readonly line?: number;
    };

interface FileSummary {
  readonly path: string;
  readonly anchor?: AuditFileAnchor;
  readonly checkpoints: readonly { checkpoint: AuditCheckpoint; line: number }[];
  readonly lastCheckpoint?: AuditCheckpoint;
  readonly digest: string;
  readonly bytes: number;
}

/**
 * Verifies audit files in the order given: each on its own (records,
 * checkpoints, and its anchor when it has one) and the sequence as a whole —
 * one hash chain and one checkpoint chain across the files, and each
 * anchor pinning its predecessor (number, size, SHA-256, last checkpoint).
 * A missing, reordered, truncated or edited file is reported with the file
 * and, where one line is to blame, the line.
 *
 * The first file may begin with an anchor (older files were archived or
 * removed): the chain is then verified from the anchor's checkpoint, whose
 * signature is checked. Without one it must start at seq 1, unless
 * `partial` (an `export --since`).
 *
 * Memory stays flat in the records (streamed); checkpoints are held (one per
 * interval).
 */
export async function verifyAuditFiles(
  paths: readonly string[],
  options: AuditChainVerifyOptions,
): Promise<AuditFilesVerifyReport> {
  if (paths.length === 0) throw new TypeError('no audit file to verify');
  const summaries: FileSummary[] = [];
  for (const path of paths) summaries.push(await summarise(path));

  let unlinked = 0;
  for (const [i, file] of summaries.entries()) {
    const problem = anchorProblem(file, summaries[i - 1], summaries.slice(i + 1), options);
    if (problem) return { ok: false, events: 0, file: file.path, ...problem };
    if (i > 0 && file.anchor?.prevFileDigest === AUDIT_ANCHOR_UNLINKED) unlinked++;
  }

  // One chain across the files: records streamed file after file, checkpoints of all of them.
  const checkpoints = summaries.flatMap((f) => f.checkpoints.map((c) => c.checkpoint));
  for (const f of summaries.slice(1)) if (f.anchor) checkpoints.push(f.anchor.checkpoint);
  let at: { file: string; line: number; seq: number } | undefined;
  let bad: { file: string; line: number; seq: number } | undefined;
  async function* records(): AsyncGenerator<AuditRecord> {
    for (const f of summaries) {
      let n = 0;
      // Compact lines (the file sink's) are expanded to the full events that were hashed;
      // each file defines the dictionary entries its records use.
      const reader = new AuditFileLineReader();
      for await (const line of lines(f.path)) {
        n++;
        if (line.length === 0 || (n === 1 && f.anchor)) continue;
        const fileLine = parseAuditFileLine(line);
        const parsed = fileLine && reader.read(fileLine);
        if (!fileLine) {
          bad = { file: f.path, line: n, seq: (at?.seq ?? f.anchor?.checkpoint.seq ?? 0) + 1 };
          return;
        }
        if (parsed?.kind === 'record') {
          at = { file: f.path, line: n, seq: parsed.record.seq };
          yield parsed.record;
        }
      }
    }
  }
  const first = summaries[0]!;
  const report = await verifyAuditChain(records(), checkpoints, {
    ...options,
    ...(first.anchor ? { anchor: first.anchor.checkpoint } : {}),
  });
  if (bad && (report.ok || report.problem === 'truncated')) {
    return {
      ok: false,
      seq: bad.seq,
      problem: 'malformed',
      detail: `line ${bad.line} of ${basename(bad.file)} is not an audit record or checkpoint`,
      events: report.events,
      file: bad.file,
      line: bad.line,
    };
  }
  if (report.ok) return { ...report, files: summaries.length, unlinkedFiles: unlinked };
  return { ...report, ...locate(report, summaries, at) };
}

/** Which file (and line) a chain problem is in: the checkpoint's line for checkpoint problems, else the record being read. */
function locate(
  report: Extract<AuditVerifyReport, { ok: false }>,
  summaries: readonly FileSummary[],
  at: { file: string; line: number; seq: number } | undefined,
): { file?: string; line?: number } {
  if (
    report.problem === 'bad-signature' ||
    report.problem === 'unknown-key' ||
    report.problem === 'checkpoint-broken'
  ) {
    for (const f of summaries) {
      const c = f.checkpoints.find((x) => x.checkpoint.seq === report.seq);
      if (c) return { file: f.path, line: c.line };
    }
  }
  if (at) return { file: at.file, line: at.line };
  return { file: summaries[0]!.path };
}

/** Problems between a file and its predecessor (or, for the first, with its own anchor). */
function anchorProblem(
  file: FileSummary,
  prev: FileSummary | undefined,
  later: readonly FileSummary[],
  options: AuditChainVerifyOptions,
): { seq: number; problem: AuditFilesProblem; detail: string; line?: number } | undefined {
  const name = basename(file.path);
  const anchor = file.anchor;
  if (!anchor) {
    if (!prev) return undefined;
    return {
      seq: 0,
      problem: 'anchor-missing',
      detail: `${name} does not begin with an anchor, so it is not the rotated successor of ${basename(prev.path)}`,
    };
  }
  const seq = anchor.checkpoint.seq;
  const key = options.publicKeys.get(anchor.keyId);
  if (!key)
    return { seq, problem: 'unknown-key', detail: `the anchor of ${name} is signed by an unknown key`, line: 1 };
  if (!verifyAuditFileAnchorSignature(anchor, key)) {
    return { seq, problem: 'anchor-invalid', detail: `the anchor of ${name} has an invalid signature`, line: 1 };
  }
  if (!prev) return undefined;
  const prevName = basename(prev.path);
  if (anchor.prevFileDigest === AUDIT_ANCHOR_UNLINKED) {
    // The predecessor could not be pinned (renamed away while custos was down):
    // only the chain links the two files, which the chain check does.
    return undefined;
  }
  const prevNumber = prev.anchor?.file ?? 0;
  if (anchor.file <= prevNumber) {
    return {
      seq,
      problem: 'file-reordered',
      detail: `${name} (file ${anchor.file}) is given after ${prevName} (file ${prevNumber}); it comes before it`,
    };
  }
  if (anchor.file > prevNumber + 1) {
    // The file that belongs here given later is a reordering, not a loss.
    const misplaced = later.find((f) => f.anchor?.file === prevNumber + 1);
    if (misplaced) {
      return {
        seq,
        problem: 'file-reordered',
        detail: `${name} (file ${anchor.file}) is given before ${basename(misplaced.path)} (file ${prevNumber + 1}); it comes after it`,
      };
    }
    const gap = anchor.file - prevNumber - 1;
    return {
      seq,
      problem: 'file-missing',
      detail: `${gap} file${gap === 1 ? '' : 's'} (number ${prevNumber + 1}${gap === 1 ? '' : `–${anchor.file - 1}`}) missing between ${prevName} and ${name}`,
    };
  }
  if (prev.bytes !== anchor.prevFileBytes || prev.digest !== anchor.prevFileDigest) {
    const how =
      prev.bytes < anchor.prevFileBytes
        ? `truncated: ${prev.bytes} of the ${anchor.prevFileBytes} bytes`
        : prev.bytes > anchor.prevFileBytes
          ? `appended to: ${prev.bytes} bytes, ${anchor.prevFileBytes} when rotated`
          : 'edited: same size, different SHA-256';
    return {
      seq,
      problem: 'file-altered',
      detail: `${prevName} changed after rotation (${how}), as pinned by the anchor of ${name}`,
    };
  }
  if (!prev.lastCheckpoint || auditCheckpointDigest(prev.lastCheckpoint) !== auditCheckpointDigest(anchor.checkpoint)) {
    return {
      seq,
      problem: 'anchor-invalid',
      detail: `the anchor of ${name} names a checkpoint other than the last of ${prevName}`,
      line: 1,
    };
  }
  return undefined;
}

/** One pass over a file: its anchor, checkpoints (with lines), size and SHA-256. */
async function summarise(path: string): Promise<FileSummary> {
  const hash = createHash('sha256');
  let bytes = 0;
  const hashed = new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on('data', (chunk: Buffer | string) => {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        hash.update(b);
        bytes += b.length;
      })
      .on('end', resolve)
      .on('error', reject);
  });
  let anchor: AuditFileAnchor | undefined;
  const checkpoints: { checkpoint: AuditCheckpoint; line: number }[] = [];
  let n = 0;
  for await (const line of lines(path)) {
    n++;
    if (n === 1) {
      anchor = parseAuditFileAnchorLine(line);
      if (anchor) continue;
    }
    const parsed = parseAuditFileLine(line);
    if (parsed?.kind === 'checkpoint') checkpoints.push({ checkpoint: parsed.checkpoint, line: n });
  }
  await hashed;
  const lastCheckpoint = checkpoints.at(-1)?.checkpoint ?? anchor?.checkpoint;
  return {
    path,
    ...(anchor ? { anchor } : {}),
    checkpoints,
    ...(lastCheckpoint ? { lastCheckpoint } : {}),
    digest: hash.digest('hex'),
    bytes,
  };
}

function lines(path: string): AsyncIterable<string> {
  return createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Number.POSITIVE_INFINITY });
}
