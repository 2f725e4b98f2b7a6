import { open } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { KnownSecret } from '@custos/redact';
import { applyBaseline, type Baseline } from './baseline.js';
import { defaultRedactor } from './default-redactor.js';
import { FileSession } from './file-session.js';
import { DEFAULT_SCAN_LIMITS, type ScanLimits } from './scan-limits.js';
import type { ScanErrorEntry, ScanFinding, ScanResult } from './scan-types.js';
import { type FindAllSource, SecretMatcher } from './secret-matcher.js';
import { fileSource, type ReadMeter } from './source/byte-source.js';
import type { VaultFingerprints } from './vault/vault-fingerprints.js';
import { walkTree } from './walk/tree-walker.js';

/** Files opened and read concurrently (memory stays bounded by the per-file limits times this). */
const FILES_IN_FLIGHT = 4;

/** Progress of a running scan, for a progress bar. */
export interface ScanProgress {
  readonly filesDone: number;
  readonly filesTotal: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

/** What and how to scan. Everything is optional. */
export interface ScanOptions {
  /** Exact values to look for (`--secrets-file`), reported as kind `known`. */
  readonly secrets?: Iterable<KnownSecret>;
  /** Replaces the redaction package's detectors (tests, or a caller's own redactor). */
  readonly redactor?: FindAllSource;
  /** Fingerprints from a custos server (`--against-vault`). */
  readonly vault?: VaultFingerprints;
  readonly limits?: Partial<ScanLimits>;
  /** gitignore-style patterns to leave out. */
  readonly exclude?: readonly string[];
  /** Honour `.gitignore` files (default true). */
  readonly gitignore?: boolean;
  /** Drops the findings it accepts. */
  readonly baseline?: Baseline;
  readonly cwd?: string;
  readonly onProgress?: (progress: ScanProgress) => void;
}

/**
 * Scans files and directories for secrets: text with the redaction package's
 * detectors, archives and model artifacts by their structure.
 *
 * @example
 * const result = await scanPaths(['models/', 'config/'], { exclude: ['*.log'] });
 * process.exitCode = result.findings.length > 0 ? 1 : 0;
 */
export async function scanPaths(paths: readonly string[], options: ScanOptions = {}): Promise<ScanResult> {
  const limits: ScanLimits = { ...DEFAULT_SCAN_LIMITS, ...options.limits };
  const matcher = new SecretMatcher(options.redactor ?? defaultRedactor(options.secrets), options.vault);
  const { files, problems } = await walkTree(paths, {
    exclude: options.exclude,
    gitignore: options.gitignore,
    cwd: options.cwd,
  });
  const findings: ScanFinding[] = [];
  const errors: ScanErrorEntry[] = problems.map((p) => ({
    kind: 'error',
    code: 'SCAN_ERR_READ',
    file: p.display,
    location: [],
    message: `could not be read (${p.code})`,
  }));
  const meter: ReadMeter = { bytesRead: 0 };
  const bytesTotal = files.reduce((n, f) => n + f.size, 0);
  let bytesDone = 0;
  let filesDone = 0;
  // A few files in flight at once: while one is being matched (CPU), the
  // next ones are opened and read (I/O on the thread pool). Results are
  // collected per file and joined in walk order, so reports are stable.
  const perFile: Array<{ findings: ScanFinding[]; errors: ScanErrorEntry[] }> = new Array(files.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < files.length; i = next++) {
      const file = files[i]!;
      const session = new FileSession(file.display, matcher, limits);
      let handle: Awaited<ReturnType<typeof open>> | undefined;
      const fileErrors: ScanErrorEntry[] = [];
      try {
        handle = await open(file.absolute, 'r');
        const { size } = await handle.stat();
        await session.run(fileSource(handle, size, meter), basename(file.absolute));
      } catch (err) {
        fileErrors.push({
          kind: 'error',
          code: 'SCAN_ERR_READ',
          file: file.display,
          location: [],
          message: `could not be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        });
      } finally {
        await handle?.close();
      }
      perFile[i] = { findings: session.findings, errors: [...fileErrors, ...session.errors] };
      filesDone++;
      bytesDone += file.size;
      options.onProgress?.({ filesDone, filesTotal: files.length, bytesDone, bytesTotal });
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILES_IN_FLIGHT, files.length) }, worker));
  for (const result of perFile) {
    findings.push(...result.findings);
    errors.push(...result.errors);
  }
  const { kept, accepted } = options.baseline
    ? applyBaseline(findings, options.baseline)
    : { kept: findings, accepted: 0 };
  return {
    findings: kept,
    errors,
    filesScanned: files.length,
    bytesScanned: bytesTotal,
    bytesRead: meter.bytesRead,
    baselined: accepted,
    root: resolve(options.cwd ?? process.cwd()),
  };
}
