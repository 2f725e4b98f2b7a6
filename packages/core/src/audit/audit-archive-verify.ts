import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { AuditCheckpoint, AuditRecord, AuditStore } from '../ports/storage.js';
import {
  AUDIT_ARCHIVE_GENESIS_DIGEST,
  type AuditArchiveHeader,
  type AuditArchiveManifest,
  parseAuditArchiveHeaderLine,
  parseAuditArchiveManifestLine,
  verifyAuditArchiveManifestSignature,
} from './audit-archive-format.js';
import { auditCheckpointDigest } from './audit-checkpoint.js';
import { parseAuditLine } from './audit-line.js';
import {
  type AuditChainVerifyOptions,
  type AuditVerifyProblem,
  type AuditVerifyReport,
  verifyAuditChain,
} from './audit-verify.js';

/**
 * What is wrong with an archive of a chain, besides the chain problems of
 * {@link AuditVerifyProblem}:
 * - `archive-unreadable`: not a gzip stream, or its compressed bytes were edited (gzip's CRC fails).
 * - `archive-truncated`: the gzip stream, or its content, ends early (no signed manifest at the end).
 * - `archive-missing`: the archives' numbers skip one or more between two given archives.
 * - `archive-reordered`: an archive comes before one it follows.
 * - `archive-altered`: an archive's content differs from what its manifest signed, or from what its successor pinned.
 * - `manifest-invalid`: a manifest's signature does not verify, or it misstates the archive.
 */
export type AuditArchiveProblem =
  | AuditVerifyProblem
  | 'archive-unreadable'
  | 'archive-truncated'
  | 'archive-missing'
  | 'archive-reordered'
  | 'archive-altered'
  | 'manifest-invalid';

export type AuditArchivesVerifyReport =
  | (Extract<AuditVerifyReport, { ok: true }> & {
      readonly archives: number;
      /** Records found in the archives (the rest of `events` is the online tail). */
      readonly archivedEvents: number;
    })
  | {
      readonly ok: false;
      readonly seq: number;
      readonly problem: AuditArchiveProblem;
      readonly detail: string;
      readonly events: number;
      /** The archive where the problem is (as given); absent for the online tail. */
      readonly file?: string;
      /** Its line (1-based, of the uncompressed content) when one line is to blame. */
      readonly line?: number;
    };

export interface AuditArchivesVerifyOptions extends Pick<AuditChainVerifyOptions, 'publicKeys' | 'defaultEvery'> {
  /** Verify the store's records after the last archive too, as one chain with the archives. */
  readonly online?: AuditStore;
  readonly batchSize?: number;
}

interface ArchiveSummary {
  readonly path: string;
  readonly header: AuditArchiveHeader;
  readonly manifest: AuditArchiveManifest;
  readonly checkpoints: readonly { checkpoint: AuditCheckpoint; line: number }[];
  readonly contentDigest: string;
  readonly records: number;
  readonly firstSeq?: number;
  readonly last?: { seq: number; hash: string };
  /** SHA-256 of the file bytes. */
  readonly digest: string;
}

type Failure = Extract<AuditArchivesVerifyReport, { ok: false }>;

/**
 * Verifies audit archives in the order given, each on its own (gzip
 * integrity, header, signed manifest over the content) and as a sequence
 * (numbers without gaps, each pinning its predecessor's SHA-256, one hash
 * chain and one checkpoint chain across them), then — with `online` — the
 * store's records after the last archive as the same chain. A missing,
 * reordered, edited or truncated archive is reported with the archive and,
 * where one line is to blame, the line.
 *
 * The first archive need not be archive 1 (older ones may be given up): its
 * header's anchor, a signed checkpoint, is where its chain starts.
 */
export async function verifyAuditArchives(
  paths: readonly string[],
  options: AuditArchivesVerifyOptions,
): Promise<AuditArchivesVerifyReport> {
  if (paths.length === 0) throw new TypeError('no audit archive to verify');
  const summaries: ArchiveSummary[] = [];
  for (const path of paths) {
    const s = await summarise(path);
    if ('ok' in s) return s;
    summaries.push(s);
  }
  for (const [i, a] of summaries.entries()) {
    const problem = sequenceProblem(a, summaries[i - 1], summaries.slice(i + 1));
    if (problem) return { ok: false, events: 0, file: a.path, ...problem };
  }

  const checkpoints = summaries.flatMap((a) => a.checkpoints.map((c) => c.checkpoint));
  const lastArchived = summaries.at(-1)!.manifest.lastSeq;
  const batchSize = options.batchSize ?? 1000;
  if (options.online) {
    for (let next = lastArchived + 1; ; ) {
      const batch = await options.online.checkpointsFrom(next, batchSize);
      checkpoints.push(...batch);
      if (batch.length < batchSize) break;
      next = batch[batch.length - 1]!.seq + 1;
    }
  }
  let at: { file?: string; line: number; seq: number } | undefined;
  let bad: { file: string; line: number; seq: number } | undefined;
  let archived = 0;
  async function* records(): AsyncGenerator<AuditRecord> {
    for (const a of summaries) {
      let n = 0;
      for await (const line of lines(a.path)) {
        n++;
        if (n === 1 || line.length === 0 || n === a.records + a.checkpoints.length + 2) continue;
        const parsed = parseAuditLine(line);
        if (!parsed) {
          bad = { file: a.path, line: n, seq: (at?.seq ?? a.header.anchor?.seq ?? 0) + 1 };
          return;
        }
        if (parsed.kind === 'record') {
          at = { file: a.path, line: n, seq: parsed.record.seq };
          archived++;
          yield parsed.record;
        }
      }
    }
    if (!options.online) return;
    for (let next = lastArchived + 1; ; ) {
      const batch = await options.online.range(next, batchSize);
      for (const r of batch) {
        at = { line: 0, seq: r.seq };
        yield r;
      }
      if (batch.length < batchSize) return;
      next = batch[batch.length - 1]!.seq + 1;
    }
  }
  const anchor = summaries[0]!.header.anchor;
  const report = await verifyAuditChain(records(), checkpoints, {
    publicKeys: options.publicKeys,
    ...(options.defaultEvery !== undefined ? { defaultEvery: options.defaultEvery } : {}),
    ...(anchor ? { anchor } : {}),
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
  if (!report.ok) {
    const where = locate(report, summaries, at);
    return { ...report, ...where };
  }
  // The chain holds; now what each manifest signed must match its content.
  for (const a of summaries) {
    const problem = manifestProblem(a, options);
    if (problem) return { ok: false, events: report.events, file: a.path, ...problem };
  }
  return { ...report, archives: summaries.length, archivedEvents: archived };
}

function locate(
  report: Extract<AuditVerifyReport, { ok: false }>,
  summaries: readonly ArchiveSummary[],
  at: { file?: string; line: number; seq: number } | undefined,
): { file?: string; line?: number } {
  if (
    report.problem === 'bad-signature' ||
    report.problem === 'unknown-key' ||
    report.problem === 'checkpoint-broken'
  ) {
    for (const a of summaries) {
      const c = a.checkpoints.find((x) => x.checkpoint.seq === report.seq);
      if (c) return { file: a.path, line: c.line };
    }
  }
  if (at?.file) return { file: at.file, line: at.line };
  return {};
}

/** Problems between an archive and its predecessor in the order given. */
function sequenceProblem(
  a: ArchiveSummary,
  prev: ArchiveSummary | undefined,
  later: readonly ArchiveSummary[],
): { seq: number; problem: AuditArchiveProblem; detail: string; line?: number } | undefined {
  const name = basename(a.path);
  const number = a.header.archive;
  const seq = a.firstSeq ?? a.manifest.firstSeq;
  if (!prev) {
    if (number === 1 && (a.header.anchor !== null || a.header.prevArchiveDigest !== AUDIT_ARCHIVE_GENESIS_DIGEST)) {
      return { seq, problem: 'archive-altered', detail: `${name} is archive 1 but names a predecessor`, line: 1 };
    }
    return undefined;
  }
  const prevName = basename(prev.path);
  const prevNumber = prev.header.archive;
  if (number <= prevNumber) {
    return {
      seq,
      problem: 'archive-reordered',
      detail: `${name} (archive ${number}) is given after ${prevName} (archive ${prevNumber}); it comes before it`,
    };
  }
  if (number > prevNumber + 1) {
    const misplaced = later.find((x) => x.header.archive === prevNumber + 1);
    if (misplaced) {
      return {
        seq,
        problem: 'archive-reordered',
        detail: `${name} (archive ${number}) is given before ${basename(misplaced.path)} (archive ${prevNumber + 1}); it comes after it`,
      };
    }
    const gap = number - prevNumber - 1;
    return {
      seq,
      problem: 'archive-missing',
      detail: `${gap} archive${gap === 1 ? '' : 's'} (number ${prevNumber + 1}${gap === 1 ? '' : `–${number - 1}`}) missing between ${prevName} and ${name}: records ${prev.manifest.lastSeq + 1}–${a.header.anchor?.seq ?? seq - 1} are not in the archives given`,
    };
  }
  if (a.header.prevArchiveDigest !== prev.digest) {
    return {
      seq: prev.manifest.firstSeq,
      problem: 'archive-altered',
      detail: `${prevName} is not the file ${name} follows: its SHA-256 differs from the one ${name} pinned (edited or replaced after archiving)`,
    };
  }
  if (!a.header.anchor || auditCheckpointDigest(a.header.anchor) !== prev.manifest.checkpointDigest) {
    return {
      seq,
      problem: 'archive-altered',
      detail: `the header of ${name} names a checkpoint other than the last of ${prevName}`,
      line: 1,
    };
  }
  return undefined;
}

/** What a manifest signed against what the archive holds. */
function manifestProblem(
  a: ArchiveSummary,
  options: AuditArchivesVerifyOptions,
): { seq: number; problem: AuditArchiveProblem; detail: string; line: number } | undefined {
  const m = a.manifest;
  const name = basename(a.path);
  const line = a.records + a.checkpoints.length + 2;
  const key = options.publicKeys.get(m.keyId);
  if (!key)
    return {
      seq: m.lastSeq,
      problem: 'unknown-key',
      detail: `the manifest of ${name} is signed by an unknown key`,
      line,
    };
  if (!verifyAuditArchiveManifestSignature(m, key)) {
    return {
      seq: m.lastSeq,
      problem: 'manifest-invalid',
      detail: `the manifest of ${name} has an invalid signature`,
      line,
    };
  }
  const lastCheckpoint = a.checkpoints.at(-1)?.checkpoint;
  const misstated =
    m.archive !== a.header.archive ||
    m.prevArchiveDigest !== a.header.prevArchiveDigest ||
    m.records !== a.records ||
    m.firstSeq !== a.firstSeq ||
    m.lastSeq !== a.last?.seq ||
    m.lastHash !== a.last?.hash ||
    !lastCheckpoint ||
    auditCheckpointDigest(lastCheckpoint) !== m.checkpointDigest;
  if (misstated) {
    return {
      seq: m.lastSeq,
      problem: 'manifest-invalid',
      detail: `the manifest of ${name} does not describe its records`,
      line,
    };
  }
  if (m.contentDigest !== a.contentDigest) {
    return {
      seq: m.firstSeq,
      problem: 'archive-altered',
      detail: `${name} was edited after archiving: its content's SHA-256 differs from the one its manifest signed`,
      line,
    };
  }
  return undefined;
}

/** One pass over an archive: bytes hashed, gzip checked, header, checkpoints, manifest, content digest. */
async function summarise(path: string): Promise<ArchiveSummary | Failure> {
  const name = basename(path);
  const fileHash = createHash('sha256');
  const content = createHash('sha256');
  let header: AuditArchiveHeader | undefined;
  let manifest: AuditArchiveManifest | undefined;
  const checkpoints: { checkpoint: AuditCheckpoint; line: number }[] = [];
  let records = 0;
  let firstSeq: number | undefined;
  let last: { seq: number; hash: string } | undefined;
  let n = 0;
  const fail = (problem: AuditArchiveProblem, detail: string, line?: number): Failure => ({
    ok: false,
    seq: (last?.seq ?? header?.anchor?.seq ?? 0) + 1,
    problem,
    detail,
    events: 0,
    file: path,
    ...(line !== undefined ? { line } : {}),
  });
  try {
    for await (const line of lines(path, fileHash)) {
      n++;
      if (manifest) return fail('archive-altered', `${name} has content after its manifest (line ${n})`, n);
      if (n === 1) {
        header = parseAuditArchiveHeaderLine(line);
        if (!header) return fail('archive-unreadable', `${name} does not begin with an audit archive header`, 1);
        content.update(`${line}\n`);
        continue;
      }
      const m = parseAuditArchiveManifestLine(line);
      if (m) {
        manifest = m;
        continue;
      }
      content.update(`${line}\n`);
      const parsed = parseAuditLine(line);
      if (parsed?.kind === 'record') {
        records++;
        firstSeq ??= parsed.record.seq;
        last = parsed.record;
      } else if (parsed?.kind === 'checkpoint') checkpoints.push({ checkpoint: parsed.checkpoint, line: n });
    }
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ENOENT') return fail('archive-missing', `${name} does not exist`);
    if (code === 'Z_BUF_ERROR' || /unexpected end/i.test(String(error))) {
      return fail('archive-truncated', `${name} ends early: its gzip stream is cut off after line ${n}`, n + 1);
    }
    return fail(
      'archive-unreadable',
      `${name} is not a readable gzip archive (${code ?? 'error'}) after line ${n}`,
      n + 1,
    );
  }
  if (!header) return fail('archive-unreadable', `${name} is empty`);
  if (!manifest) return fail('archive-truncated', `${name} ends after line ${n} without its signed manifest`, n + 1);
  return {
    path,
    header,
    manifest,
    checkpoints,
    contentDigest: content.digest('hex'),
    records,
    ...(firstSeq !== undefined ? { firstSeq } : {}),
    ...(last ? { last: { seq: last.seq, hash: last.hash } } : {}),
    digest: fileHash.digest('hex'),
  };
}

/** The uncompressed lines of an archive; with `hash`, the compressed bytes are hashed on the way. */
function lines(path: string, hash?: ReturnType<typeof createHash>): AsyncIterable<string> {
  const raw = createReadStream(path);
  if (hash) raw.on('data', (chunk: Buffer | string) => hash.update(chunk));
  const gunzip = createGunzip();
  raw.on('error', (e) => gunzip.destroy(e));
  return createInterface({ input: raw.pipe(gunzip), crlfDelay: Number.POSITIVE_INFINITY });
}
