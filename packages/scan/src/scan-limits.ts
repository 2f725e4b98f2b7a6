/**
 * Bounds that keep a hostile input (zip bomb, nested archives, a header that
 * claims 10 GB, a GGUF with 2^60 keys) from costing unbounded memory or time.
 * When a bound is hit the part is reported as a `SCAN_ERR_*` error and the
 * scan of everything else goes on.
 */
export interface ScanLimits {
  /** Archive/model nesting depth (a zip in a zip in a tar is depth 3). */
  readonly maxDepth: number;
  /** Entries in one archive, keys in one metadata table, items in one array. */
  readonly maxEntries: number;
  /** Declared or actual uncompressed/compressed ratio above which a member is a bomb. */
  readonly maxExpansionRatio: number;
  /** Bytes decompressed from (or read into memory for) one archive member. */
  readonly maxMemberBytes: number;
  /** Bytes decompressed across one top-level file, all members and depths together. */
  readonly maxTotalInflatedBytes: number;
  /** Size of one pickle stream. */
  readonly maxPickleBytes: number;
  /** Length of one string in a pickle, GGUF, protobuf or header. */
  readonly maxStringBytes: number;
  /** Size of a JSON header (safetensors) read into memory. */
  readonly maxHeaderBytes: number;
  /** Wall-clock time for one top-level file. */
  readonly maxFileMs: number;
}

/** Defaults sized for real model artifacts on a laptop: generous for metadata, bounded for payloads. */
export const DEFAULT_SCAN_LIMITS: ScanLimits = {
  maxDepth: 6,
  maxEntries: 100_000,
  maxExpansionRatio: 200,
  maxMemberBytes: 64 * 2 ** 20,
  maxTotalInflatedBytes: 512 * 2 ** 20,
  maxPickleBytes: 256 * 2 ** 20,
  maxStringBytes: 16 * 2 ** 20,
  maxHeaderBytes: 100 * 2 ** 20,
  maxFileMs: 60_000,
};
