/**
 * The storage port. Physical storage is *untrusted*: it only ever sees
 * ciphertext produced by the barrier for values, plus the few plain columns
 * needed for indexing (keys, expiry). Integrity of values comes from the
 * barrier's AEAD, whose AAD binds each blob to its (namespace, key), so a blob
 * copied to another row fails to decrypt.
 *
 * Two stores, each small:
 * - {@link EntryStore}: namespaced key → blob, the physical layer for every
 *   barrier-protected record (secret versions and metadata, policies, tokens,
 *   system configuration).
 * - {@link AuditStore}: the append-only, hash-chained audit log.
 *
 * Every adapter (SQLite, PostgreSQL) passes the same conformance suite in
 * `@custos/storage`.
 */

/** One stored entry. `value` is opaque bytes (in practice barrier ciphertext). */
export interface StoredEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** Epoch milliseconds after which the entry is expired, if any (plain, for the expiry index). */
  readonly expiresAt: number | null;
}

export interface PutOptions {
  /** Epoch milliseconds; stored plain so expired entries can be found without decrypting. */
  readonly expiresAt?: number | null;
}

export interface ListOptions {
  /** Return only keys strictly greater than this one (keyset pagination). */
  readonly after?: string;
  /** At most this many keys (adapters cap it at 10,000). */
  readonly limit?: number;
}

/**
 * Namespaced key/value storage. Namespaces are short fixed identifiers chosen
 * by core (`kv.meta`, `kv.version`, `policy`, `token`, `sys`, …); keys are
 * arbitrary UTF-8 strings (no NUL). Keys sort by their UTF-8 bytes (binary
 * collation on both adapters), so prefix listing is a range scan.
 */
export interface EntryStore {
  get(namespace: string, key: string): Promise<StoredEntry | undefined>;
  /** Insert or replace. */
  put(namespace: string, key: string, value: Uint8Array, options?: PutOptions): Promise<void>;
  /** Insert only when absent; false when the key already exists. Atomic. */
  putIfAbsent(namespace: string, key: string, value: Uint8Array, options?: PutOptions): Promise<boolean>;
  /** True when something was deleted. */
  delete(namespace: string, key: string): Promise<boolean>;
  /** Keys (not values) starting with `prefix`, ascending. */
  list(namespace: string, prefix: string, options?: ListOptions): Promise<string[]>;
  /** Entries (with values) whose key starts with `prefix`, ascending. */
  scan(namespace: string, prefix: string, options?: ListOptions): Promise<StoredEntry[]>;
  /** Keys whose `expiresAt` is ≤ `now`, oldest expiry first. */
  listExpired(namespace: string, now: number, limit: number): Promise<string[]>;
}

/** One audit record as stored: the event is canonical JSON, chained by hash. */
export interface AuditRecord {
  /** 1, 2, 3, … without gaps. */
  readonly seq: number;
  /** ISO-8601 time the event was recorded. */
  readonly ts: string;
  /** Hex SHA-256 of the previous record (64 zeros for seq 1). */
  readonly prevHash: string;
  /** Hex SHA-256 over prevHash and the canonical event JSON. */
  readonly hash: string;
  /** Canonical JSON of the event (never contains secret values). */
  readonly event: string;
}

/** What every checkpoint says: the chain up to `seq` ends in `hash`, signed at `ts`. */
interface AuditCheckpointCommon {
  readonly seq: number;
  readonly hash: string;
  readonly ts: string;
  /** Key id of the Ed25519 key that signed it. */
  readonly keyId: string;
  /** Base64url Ed25519 signature over the checkpoint statement. */
  readonly signature: string;
}

/**
 * A legacy checkpoint (`custos-audit-checkpoint:v1`), written before
 * checkpoints were chained. Verified for its signature and hash only.
 */
export interface AuditCheckpointV1 extends AuditCheckpointCommon {
  readonly version: 1;
}

/**
 * A chained checkpoint (`custos-audit-checkpoint:v2`): besides the chain's
 * end it binds the checkpoint before it and the interval the writer keeps,
 * so a deleted checkpoint or a looser interval shows (see docs/audit.md).
 */
export interface AuditCheckpointV2 extends AuditCheckpointCommon {
  readonly version: 2;
  /** Seq of the previous checkpoint (0 for the first of a chain). */
  readonly prevSeq: number;
  /** Digest of the previous checkpoint ({@link AuditCheckpointV2.prevSeq}), 64 zeros for the first. */
  readonly prevDigest: string;
  /** At most this many records lie between this checkpoint and the next. */
  readonly every: number;
  /** The writer seals new records at least this often while it runs (ms). */
  readonly intervalMs: number;
}

/** A signed statement that the chain up to `seq` ends in `hash`. */
export type AuditCheckpoint = AuditCheckpointV1 | AuditCheckpointV2;

export interface AuditStore {
  /**
   * Append records whose seqs continue the chain without gaps. Throws
   * {@link AuditConflictError} when a seq is already taken (another node
   * appended first) and writes none of the batch.
   */
  append(records: readonly AuditRecord[]): Promise<void>;
  /** The record with the highest seq. */
  head(): Promise<AuditRecord | undefined>;
  /** Records with seq ≥ `fromSeq`, ascending, at most `limit`. */
  range(fromSeq: number, limit: number): Promise<AuditRecord[]>;
  /** The first seq whose ts ≥ `ts` (ISO-8601), if any. */
  firstSeqSince(ts: string): Promise<number | undefined>;
  /**
   * Stores a checkpoint. A v2 checkpoint is stored only if the store's last
   * checkpoint is the one it names (`prevSeq`; none when 0), atomically: two
   * nodes can never both chain a checkpoint to the same predecessor. Throws
   * {@link AuditConflictError} otherwise, or when its seq is taken.
   */
  appendCheckpoint(checkpoint: AuditCheckpoint): Promise<void>;
  /** Checkpoints ascending by seq. */
  checkpoints(): Promise<AuditCheckpoint[]>;
  /** Checkpoints with seq ≥ `fromSeq`, ascending, at most `limit`. */
  checkpointsFrom(fromSeq: number, limit: number): Promise<AuditCheckpoint[]>;
  /** The checkpoint with the highest seq. */
  lastCheckpoint(): Promise<AuditCheckpoint | undefined>;
  /** Where the online chain begins after archival (docs/audit.md, "Archival"); none before the first archive. */
  archiveState(): Promise<AuditArchiveState | undefined>;
  /** Records the archive state (one row, replaced). */
  setArchiveState(state: AuditArchiveState): Promise<void>;
  /**
   * Deletes at most `limit` of the oldest records with seq < `beforeSeq` in
   * one short transaction; once none is left below it, at most `limit`
   * checkpoints with seq < `beforeSeq`; once none of those is left, at most
   * `limit` dictionary entries of compact events that no record at or after
   * `beforeSeq` can reference. Returns the rows deleted (0: done).
   * The record and checkpoint at `beforeSeq` stay: the online chain's
   * anchor, and the row a derived prev_hash after it is read from.
   */
  deleteArchived(beforeSeq: number, limit: number): Promise<number>;
  /**
   * Takes (or renews) the archival lease for `holder` until `expiresAt`
   * (ms since the epoch) when it is free, expired at `now`, or already
   * `holder`'s; false when another holder has it. One statement, so two
   * nodes asking at once cannot both get it.
   */
  acquireArchiveLease(holder: string, now: number, expiresAt: number): Promise<boolean>;
  /** Gives the lease up, if `holder` has it. */
  releaseArchiveLease(holder: string): Promise<void>;
}

/**
 * The online anchor of archived audit records, and the archival journal:
 * `archiving` is recorded once the archive file is durable and before any
 * record is deleted; `archived` once all deletes are done. A run that finds
 * `archiving` finishes the deletes (the archive is on disk).
 */
export interface AuditArchiveState {
  /** The last archive's number. */
  readonly archive: number;
  /** Its last checkpoint: the online chain resumes at `checkpoint.seq + 1`. */
  readonly checkpoint: AuditCheckpoint;
  /** SHA-256 of its file bytes (the next archive's `prevArchiveDigest`). */
  readonly digest: string;
  /** Its file name in the archive directory. */
  readonly file: string;
  readonly status: 'archiving' | 'archived';
}

/** Raised by {@link AuditStore.append} when another writer took a seq first. */
export class AuditConflictError extends Error {
  constructor() {
    super('audit sequence conflict');
    this.name = 'AuditConflictError';
  }
}

/** What a transaction sees: the same stores, bound to one transaction. */
export interface StorageTx {
  readonly entries: EntryStore;
  readonly audit: AuditStore;
}

export interface Storage extends StorageTx {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Run `fn` in one transaction: all of its writes land or none do. On
   * SQLite transactions are serialised (one writer); on PostgreSQL they run at
   * READ COMMITTED with row locks taken by the stores as needed.
   * `fn` must only use the `tx` it is given.
   */
  transaction<T>(fn: (tx: StorageTx) => Promise<T>): Promise<T>;
  /** Create or upgrade the schema; idempotent, safe to call on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}
