/**
 * What a scan reports. A finding or an error always names the file on disk and
 * the path inside it in the format's own terms (archive members, pickle keys,
 * metadata keys), so a reader can go and look.
 */

/** Where a finding comes from: a known value, a pattern detector, a vault fingerprint, or unsafe code in a pickle. */
export type ScanFindingKind = 'known' | 'detector' | 'vault' | 'unsafe-code';

/** One secret (or unsafe construct) found in a file. */
export interface ScanFinding {
  readonly kind: ScanFindingKind;
  /** Stable rule id: the detector's id, `known:<name>`, `vault:<path>#<field>` or `pickle-unsafe-import`. */
  readonly ruleId: string;
  /** The file on disk, as the walker reached it (relative to the working directory when possible, `/`-separated). */
  readonly file: string;
  /** Path inside the file: archive members, then the format's own location (`__metadata__.training_args`). */
  readonly location: readonly string[];
  /** 1-based line and column in the innermost text, when the innermost container is text. */
  readonly line?: number;
  readonly column?: number;
  /**
   * The matched value. Reporters mask it (`--show-secrets` aside); it is kept
   * in memory only so that baselines and vault matching can hash it.
   */
  readonly value: string;
  /** A sentence for unsafe-code findings (`pickle imports os.system`). */
  readonly message?: string;
}

/** Stable codes of per-file errors. Each one means "this part could not be scanned"; the scan goes on. */
export type ScanErrorCode =
  | 'SCAN_ERR_READ'
  | 'SCAN_ERR_TRUNCATED'
  | 'SCAN_ERR_CORRUPT'
  | 'SCAN_ERR_ZIP_BOMB'
  | 'SCAN_ERR_DEPTH'
  | 'SCAN_ERR_LIMIT'
  | 'SCAN_ERR_TIMEOUT'
  | 'SCAN_ERR_UNSUPPORTED';

/** A part of the input that could not be scanned, and why. */
export interface ScanErrorEntry {
  readonly kind: 'error';
  readonly code: ScanErrorCode;
  readonly file: string;
  readonly location: readonly string[];
  /** A fixed sentence about the structure; never contains file content. */
  readonly message: string;
}

/** The outcome of one scan. */
export interface ScanResult {
  readonly findings: ScanFinding[];
  readonly errors: ScanErrorEntry[];
  /** Files the walker handed to a reader. */
  readonly filesScanned: number;
  /** Total size of those files on disk. */
  readonly bytesScanned: number;
  /** Bytes actually read from disk (much less than bytesScanned for model files: payloads are skipped). */
  readonly bytesRead: number;
  /** Findings dropped because the baseline accepts them. */
  readonly baselined: number;
  /**
   * The absolute directory that relative `file` paths are relative to (the
   * scan's working directory): the SARIF report's `%SRCROOT%`.
   */
  readonly root: string;
}

/** `a.pt › archive/data.pkl › config.key`, the display form of a location. */
export function formatLocation(file: string, location: readonly string[], line?: number): string {
  const head = [file, ...location].join(' › ');
  return line === undefined ? head : `${head}:${line}`;
}
