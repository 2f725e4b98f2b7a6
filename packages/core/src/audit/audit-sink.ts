import type { AuditCheckpoint, AuditRecord } from '../ports/storage.js';

/**
 * A place audit records are written besides the database (which the audit
 * log drives itself, as the chain authority). One small interface so a new
 * sink (syslog, a socket) is a few lines.
 *
 * The audit log writes one batch at a time, never concurrently, in seq order.
 */
export interface AuditSink {
  /** Short name for error reports (`file`, `stdout`). */
  readonly name: string;
  /**
   * True when a resolved {@link write} means the records survive a crash of
   * the process and the machine. Only durable sinks can acknowledge a batch.
   */
  readonly durable: boolean;
  /** Write the batch; reject if it was not (wholly) written. */
  write(records: readonly AuditRecord[]): Promise<void>;
  /**
   * True when a new (empty) copy should begin with the last checkpoint and
   * the records after it, so it verifies on its own from that checkpoint.
   */
  readonly startsAtCheckpoint?: boolean;
  /** Write a checkpoint, so the sink's copy can be verified on its own. */
  writeCheckpoint?(checkpoint: AuditCheckpoint): Promise<void>;
  /**
   * The records this sink holds with seq greater than `seq`, ascending. Used
   * when the log opens, to give the database records it missed before a crash.
   */
  recordsAfter?(seq: number): Promise<AuditRecord[]>;
  /**
   * The highest seq this sink holds, if any. Used when the log opens to give
   * the sink records the database committed just before a crash that the
   * sink never got, so its copy has no gap.
   */
  lastRecordSeq?(): Promise<number | undefined>;
  /**
   * The last record and the last checkpoint this sink holds, the checkpoint
   * only if it lies within `maxRecords` records of the end. Used when the log
   * opens to compare this copy with the database: a durable sink that
   * disagrees with it stops the log from signing anything.
   */
  tail?(maxRecords: number): Promise<AuditSinkTail>;
  close(): Promise<void>;
}

/** What {@link AuditSink.tail} found. */
export interface AuditSinkTail {
  readonly record?: AuditRecord;
  readonly checkpoint?: AuditCheckpoint;
}
