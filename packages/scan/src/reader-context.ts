import type { ScanLimits } from './scan-limits.js';
import type { ScanErrorCode } from './scan-types.js';
import type { ByteSource } from './source/byte-source.js';

/**
 * What a reader may do: report strings and text for matching, report unsafe
 * code and errors, and hand nested members back to the dispatcher. Readers
 * never see the matcher or the report, so each stays a pure structure walker.
 */
export interface ReaderContext {
  readonly limits: ScanLimits;
  /** Nesting depth of the source being read (0 for a file on disk). */
  readonly depth: number;
  /** Matches one extracted string value at `location`. */
  inspectString(value: string, location: readonly string[]): void;
  /**
   * Matches a window of text. Only matches starting before `ownedEnd` (a char
   * index) are reported — the rest belong to the next, overlapping window.
   * `lineBase` is the 1-based line number of the window's first char.
   */
  inspectText(text: string, location: readonly string[], lineBase: number, ownedEnd: number): void;
  /** Reports code that would run on load (a pickle importing `os.system`). */
  unsafe(ruleId: string, message: string, value: string, location: readonly string[]): void;
  /** Reports a part that could not be scanned; the caller goes on with the next part. */
  error(code: ScanErrorCode, message: string, location: readonly string[]): void;
  /** Throws SCAN_ERR_TIMEOUT once the file's time budget is spent. */
  checkTime(): void;
  /** Charges decompressed bytes to the file's budget; throws when it is spent. */
  chargeInflated(bytes: number): void;
  /** Scans a nested member (archive entry, npy pickle payload) with the reader its format calls for. */
  descend(source: ByteSource, name: string, location: readonly string[]): Promise<void>;
}

/**
 * A reader walks one format's structure. `location` is the path to the source
 * inside the file on disk (archive members so far, empty for the file
 * itself); `name` is the source's own file name, which some formats use.
 */
export type FormatReader = (
  source: ByteSource,
  location: readonly string[],
  ctx: ReaderContext,
  name: string,
) => Promise<void>;
