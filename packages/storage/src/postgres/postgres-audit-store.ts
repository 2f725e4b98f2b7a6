import {
  type AuditArchiveState,
  type AuditCheckpoint,
  AuditConflictError,
  type AuditRecord,
  type AuditStore,
} from '@custos/core';
import type { QueryConfig } from 'pg';
import { type AuditArchiveRow, auditArchiveFromRow, auditArchiveValues } from '../shared/audit-archive-row.js';
import { assertContiguous } from '../shared/audit-batch.js';
import {
  type AuditCheckpointRow,
  auditCheckpointFromRow,
  auditCheckpointValues,
} from '../shared/audit-checkpoint-row.js';
import {
  AuditDictionaryCache,
  dictionaryCandidates,
  fromStoredRows,
  genuineEntries,
  referencedIds,
  type StoredAuditRow,
  toStoredRows,
} from '../shared/audit-compaction.js';
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

const toRow = (r: AuditRow): StoredAuditRow => ({
  seq: Number(r.seq),
  ts: r.ts,
  prevHash: r.prev_hash,
  hash: r.hash,
  event: r.event,
});

/** {@link AuditStore} over a pool or one transaction's client. */
export class PostgresAuditStore implements AuditStore {
  readonly #dictionary: AuditDictionaryCache;

  constructor(
    private readonly q: PostgresQueries,
    private readonly ctx: PostgresContext,
    span?: number,
  ) {
    this.#dictionary = new AuditDictionaryCache(span);
  }

  append(records: readonly AuditRecord[]): Promise<void> {
    try {
      assertContiguous(records);
    } catch (e) {
      return Promise.reject(e);
    }
    if (records.length === 0) return Promise.resolve();
    return this.ctx.run(async (db) => {
      // The dictionary entries first, each with its use recorded unless this
      // store recorded one within the span (the invariant at
      // AUDIT_DICTIONARY_SPAN): content-addressed, so an entry left by a
      // batch that then loses a conflict is harmless (and reused). What the
      // table holds for each id is read back: an id held by another value (a
      // 48-bit collision, or a rewritten entry) is not referenced.
      const last = records.at(-1)!.seq;
      const candidates = dictionaryCandidates(records);
      const entries = new Map<string, string>();
      const unrecorded: string[] = [];
      for (const id of candidates.keys()) {
        const known = this.#dictionary.fresh(id, last);
        if (known === undefined) unrecorded.push(id);
        else entries.set(id, known);
      }
      const recorded =
        unrecorded.length === 0
          ? []
          : (
              await db.query<{ id: string; value: string }>(
                bind(this.q.dictionaryUse, [unrecorded, unrecorded.map((id) => candidates.get(id)!), last]),
              )
            ).rows;
      for (const row of recorded) entries.set(row.id, row.value);
      // The batch's first record keeps its prev_hash; the others' are derived.
      const stored = toStoredRows(records, entries, undefined);
      const query = bind(this.q.append, [
        stored.map((r) => r.seq),
        stored.map((r) => r.ts),
        stored.map((r) => r.prevHash),
        stored.map((r) => r.hash),
        stored.map((r) => r.event),
        records[0]!.seq - 1,
      ]);
      const r = await this.#conflictSafe(db, query);
      // Zero rows: the batch does not start right after the head (stale view).
      if (r !== records.length) throw new AuditConflictError();
      // Inside a transaction that may still roll back, the uses recorded are not known to be stored.
      if (!this.ctx.inTransaction) for (const row of recorded) this.#dictionary.add(row.id, row.value, last);
    });
  }

  head(): Promise<AuditRecord | undefined> {
    // No snapshot needed: the head is at or above any anchor, so no run deletes its entries.
    return this.ctx.run(async (db) => {
      const { rows } = await db.query<AuditRow>(bind(this.q.head, []));
      const [head, before] = rows.map(toRow);
      return head && (await this.#records(db, [head], before))[0];
    });
  }

  range(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    // One snapshot for the rows and their entries: an archive run deletes
    // records, then the entries only they referenced, in between.
    return this.ctx.snapshot(async (db) => {
      // One row more, from the one before: a derived prev_hash is its hash.
      const from = Math.max(1, fromSeq - 1);
      const { rows } = await db.query<AuditRow>(bind(this.q.range, [from, clampLimit(limit) + 1]));
      const stored = rows.map(toRow);
      const before = stored[0] && stored[0].seq < fromSeq ? stored.shift() : undefined;
      return this.#records(db, stored.slice(0, clampLimit(limit)), before);
    });
  }

  /** Rows to records: the dictionary entries they reference read from the table (each checked against its id). */
  async #records(db: Queryable, rows: StoredAuditRow[], before: StoredAuditRow | undefined): Promise<AuditRecord[]> {
    const ids = referencedIds(rows);
    const found =
      ids.length === 0 ? [] : (await db.query<{ id: string; value: string }>(bind(this.q.dictionaryGet, [ids]))).rows;
    return fromStoredRows(rows, genuineEntries(found), before);
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

  archiveState(): Promise<AuditArchiveState | undefined> {
    return this.ctx.run(async (db) => {
      const { rows } = await db.query<AuditArchiveRow>(bind(this.q.archiveState, []));
      return rows[0] && auditArchiveFromRow(rows[0]);
    });
  }

  setArchiveState(state: AuditArchiveState): Promise<void> {
    return this.ctx.run(async (db) => {
      await db.query(bind(this.q.setArchiveState, auditArchiveValues(state)));
    });
  }

  deleteArchived(beforeSeq: number, limit: number): Promise<number> {
    return this.ctx.run(async (db) => {
      const n = clampLimit(limit);
      // Its own statement first: a no-op once done, and the deletes below never touch the anchor row.
      await db.query(bind(this.q.keepAnchorPrevHash, [beforeSeq]));
      const records = await db.query(bind(this.q.deleteArchivedRecords, [beforeSeq, n]));
      if ((records.rowCount ?? 0) > 0) return records.rowCount ?? 0;
      const checkpoints = await db.query(bind(this.q.deleteArchivedCheckpoints, [beforeSeq, n]));
      if ((checkpoints.rowCount ?? 0) > 0) return checkpoints.rowCount ?? 0;
      const unused = await db.query(
        bind(this.q.deleteUnusedDictionary, [this.#dictionary.collectibleBelow(beforeSeq), n]),
      );
      return unused.rowCount ?? 0;
    });
  }

  acquireArchiveLease(holder: string, now: number, expiresAt: number): Promise<boolean> {
    return this.ctx.run(async (db) => {
      const r = await db.query(bind(this.q.acquireArchiveLease, [holder, expiresAt, now]));
      return r.rowCount === 1;
    });
  }

  releaseArchiveLease(holder: string): Promise<void> {
    return this.ctx.run(async (db) => {
      await db.query(bind(this.q.releaseArchiveLease, [holder]));
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
