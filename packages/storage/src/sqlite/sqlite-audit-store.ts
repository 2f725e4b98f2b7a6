import { type AuditCheckpoint, AuditConflictError, type AuditRecord, type AuditStore } from '@custos/core';
import type { Transaction } from 'better-sqlite3';
import { assertContiguous } from '../shared/audit-batch.js';
import {
  AUDIT_CHECKPOINT_COLUMNS,
  type AuditCheckpointRow,
  auditCheckpointFromRow,
  auditCheckpointValues,
} from '../shared/audit-checkpoint-row.js';
import { clampLimit } from '../shared/list-limit.js';
import type { SqliteRunner, SqliteStatements } from './sqlite-statements.js';

const COLUMNS = 'seq, ts, prev_hash AS prevHash, hash, event';
const MAX_SEQ = 'SELECT max(seq) FROM audit_log';
const INSERT = 'INSERT INTO audit_log (seq, ts, prev_hash, hash, event) VALUES (?, ?, ?, ?, ?)';
const HEAD = `SELECT ${COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT 1`;
const RANGE = `SELECT ${COLUMNS} FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?`;
const FIRST_SINCE = 'SELECT min(seq) FROM audit_log WHERE ts >= ?';
const INSERT_CHECKPOINT = `INSERT INTO audit_checkpoints (${AUDIT_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const LAST_CHECKPOINT_SEQ = 'SELECT max(seq) FROM audit_checkpoints';
const CHECKPOINTS = `SELECT ${AUDIT_CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq`;
const CHECKPOINTS_FROM = `SELECT ${AUDIT_CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq >= ? ORDER BY seq LIMIT ?`;
const LAST_CHECKPOINT = `SELECT ${AUDIT_CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`;

function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

function isPrimaryKeyViolation(e: unknown): boolean {
  return (e as { code?: unknown })?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** {@link AuditStore} over one SQLite connection. */
export class SqliteAuditStore implements AuditStore {
  readonly #appendBatch: Transaction<(records: readonly AuditRecord[]) => void>;
  readonly #appendCheckpoint: Transaction<(checkpoint: AuditCheckpoint) => void>;

  constructor(
    private readonly stmts: SqliteStatements,
    private readonly run: SqliteRunner,
  ) {
    // better-sqlite3 runs this as its own transaction, or as a savepoint when
    // a custos transaction is open: either way the batch lands whole or not at all.
    this.#appendBatch = stmts.db.transaction((records: readonly AuditRecord[]) => {
      const head = (this.stmts.pluck(MAX_SEQ).get() as number | null) ?? 0;
      // A batch that does not start right after the head was built on a stale
      // view of the chain: the caller re-reads the head and retries.
      if (records[0]!.seq !== head + 1) throw new AuditConflictError();
      const insert = this.stmts.get(INSERT);
      for (const r of records) insert.run(r.seq, r.ts, r.prevHash, r.hash, r.event);
    });
    this.#appendCheckpoint = stmts.db.transaction((checkpoint: AuditCheckpoint) => {
      if (checkpoint.version === 2) {
        // A chained checkpoint must follow the last one stored: otherwise
        // another node chained one first (or the table was tampered with).
        const last = (this.stmts.pluck(LAST_CHECKPOINT_SEQ).get() as number | null) ?? 0;
        if (last !== checkpoint.prevSeq) throw new AuditConflictError();
      }
      this.stmts.get(INSERT_CHECKPOINT).run(...auditCheckpointValues(checkpoint));
    });
  }

  append(records: readonly AuditRecord[]): Promise<void> {
    try {
      assertContiguous(records);
    } catch (e) {
      return Promise.reject(e);
    }
    if (records.length === 0) return Promise.resolve();
    return this.run(() => {
      try {
        this.#appendBatch.immediate(records);
      } catch (e) {
        throw isPrimaryKeyViolation(e) ? new AuditConflictError() : e;
      }
    });
  }

  head(): Promise<AuditRecord | undefined> {
    return this.run(() => this.stmts.get(HEAD).get() as AuditRecord | undefined);
  }

  range(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    return this.run(() => this.stmts.get(RANGE).all(fromSeq, clampLimit(limit)) as AuditRecord[]);
  }

  firstSeqSince(ts: string): Promise<number | undefined> {
    return this.run(() => (this.stmts.pluck(FIRST_SINCE).get(ts) as number | null) ?? undefined);
  }

  appendCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    return this.run(() => {
      try {
        this.#appendCheckpoint.immediate(checkpoint);
      } catch (e) {
        // Another node checkpointed this seq, or chained to the same predecessor, first.
        throw isUniqueViolation(e) ? new AuditConflictError() : e;
      }
    });
  }

  checkpoints(): Promise<AuditCheckpoint[]> {
    return this.run(() => (this.stmts.get(CHECKPOINTS).all() as AuditCheckpointRow[]).map(auditCheckpointFromRow));
  }

  checkpointsFrom(fromSeq: number, limit: number): Promise<AuditCheckpoint[]> {
    return this.run(() =>
      (this.stmts.get(CHECKPOINTS_FROM).all(fromSeq, clampLimit(limit)) as AuditCheckpointRow[]).map(
        auditCheckpointFromRow,
      ),
    );
  }

  lastCheckpoint(): Promise<AuditCheckpoint | undefined> {
    return this.run(() => {
      const row = this.stmts.get(LAST_CHECKPOINT).get() as AuditCheckpointRow | undefined;
      return row && auditCheckpointFromRow(row);
    });
  }
}
