import { type AuditCheckpoint, AuditConflictError, type AuditRecord, type AuditStore } from '@custos/core';
import type { QueryConfig } from 'pg';
import { assertContiguous } from '../shared/audit-batch.js';
import {
  type AuditCheckpointRow,
  auditCheckpointFromRow,
  auditCheckpointValues,
} from '../shared/audit-checkpoint-row.js';
import { clampLimit } from '../shared/list-limit.js';
import { bind, type PostgresQueries } from './postgres-queries.js';
import type { PostgresContext, Queryable } from './postgres-runner.js';

interface AuditRow {
  seq: string;
  ts: string;
  prev_hash: string;
  hash: string;
  event: string;
}

const UNIQUE_VIOLATION = '23505';

const toRecord = (r: AuditRow): AuditRecord => ({
  seq: Number(r.seq),
  ts: r.ts,
  prevHash: r.prev_hash,
  hash: r.hash,
  event: r.event,
});

/** {@link AuditStore} over a pool or one transaction's client. */
export class PostgresAuditStore implements AuditStore {
  constructor(
    private readonly q: PostgresQueries,
    private readonly ctx: PostgresContext,
  ) {}

  append(records: readonly AuditRecord[]): Promise<void> {
    try {
      assertContiguous(records);
    } catch (e) {
      return Promise.reject(e);
    }
    if (records.length === 0) return Promise.resolve();
    const query = bind(this.q.append, [
      records.map((r) => r.seq),
      records.map((r) => r.ts),
      records.map((r) => r.prevHash),
      records.map((r) => r.hash),
      records.map((r) => r.event),
      records[0]!.seq - 1,
    ]);
    return this.ctx.run(async (db) => {
      const r = await this.#conflictSafe(db, query);
      // Zero rows: the batch does not start right after the head (stale view).
      if (r !== records.length) throw new AuditConflictError();
    });
  }

  head(): Promise<AuditRecord | undefined> {
    return this.ctx.run(async (db) => {
      const { rows } = await db.query<AuditRow>(bind(this.q.head, []));
      return rows[0] && toRecord(rows[0]);
    });
  }

  range(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    return this.ctx.run(async (db) => {
      const { rows } = await db.query<AuditRow>(bind(this.q.range, [fromSeq, clampLimit(limit)]));
      return rows.map(toRecord);
    });
  }

  firstSeqSince(ts: string): Promise<number | undefined> {
    return this.ctx.run(async (db) => {
      const { rows } = await db.query<{ seq: string | null }>(bind(this.q.firstSeqSince, [ts]));
      const seq = rows[0]?.seq;
      return seq === null || seq === undefined ? undefined : Number(seq);
    });
  }

  appendCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    const values = auditCheckpointValues(checkpoint);
    const query =
      checkpoint.version === 2
        ? bind(this.q.appendChainedCheckpoint, [...values, checkpoint.prevSeq])
        : bind(this.q.appendCheckpoint, values);
    return this.ctx.run(async (db) => {
      const n = await this.#conflictSafe(db, query);
      // Zero rows: the store's last checkpoint is not the one this one names.
      if (n !== 1) throw new AuditConflictError();
    });
  }

  checkpoints(): Promise<AuditCheckpoint[]> {
    return this.ctx.run(async (db) => {
      const { rows } = await db.query<AuditCheckpointRow>(bind(this.q.checkpoints, []));
      return rows.map(auditCheckpointFromRow);
    });
  }

  checkpointsFrom(fromSeq: number, limit: number): Promise<AuditCheckpoint[]> {
    return this.ctx.run(async (db) => {
      const { rows } = await db.query<AuditCheckpointRow>(bind(this.q.checkpointsFrom, [fromSeq, clampLimit(limit)]));
      return rows.map(auditCheckpointFromRow);
    });
  }

  lastCheckpoint(): Promise<AuditCheckpoint | undefined> {
    return this.ctx.run(async (db) => {
      const { rows } = await db.query<AuditCheckpointRow>(bind(this.q.lastCheckpoint, []));
      return rows[0] && auditCheckpointFromRow(rows[0]);
    });
  }

  /**
   * Runs an insert, mapping a unique violation to {@link AuditConflictError}.
   * Inside a transaction it runs under a savepoint, so a conflict leaves the
   * transaction usable (as on SQLite) instead of aborting it.
   */
  async #conflictSafe(db: Queryable, query: QueryConfig): Promise<number> {
    if (this.ctx.inTransaction) await db.query({ text: 'SAVEPOINT custos_audit' });
    try {
      const r = await db.query(query);
      if (this.ctx.inTransaction) await db.query({ text: 'RELEASE SAVEPOINT custos_audit' });
      return r.rowCount ?? 0;
    } catch (e) {
      if (this.ctx.inTransaction) await db.query({ text: 'ROLLBACK TO SAVEPOINT custos_audit' });
      if ((e as { code?: unknown }).code === UNIQUE_VIOLATION) throw new AuditConflictError();
      throw e;
    }
  }
}
