import {
  AUDIT_GENESIS_HASH,
  type AuditArchiveState,
  type AuditCheckpoint,
  AuditConflictError,
  type AuditRecord,
  type AuditStore,
} from '@custos/core';
import type { Transaction } from 'better-sqlite3';
import { type AuditArchiveRow, auditArchiveFromRow, auditArchiveValues } from '../shared/audit-archive-row.js';
import { assertContiguous } from '../shared/audit-batch.js';
import {
  AUDIT_CHECKPOINT_COLUMNS,
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
import type { SqliteRunner, SqliteStatements } from './sqlite-statements.js';

const COLUMNS = 'seq, ts, prev_hash AS prevHash, hash, event';
const HEAD_ROW = 'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1';
const INSERT = 'INSERT INTO audit_log (seq, ts, prev_hash, hash, event) VALUES (?, ?, ?, ?, ?)';
// The last two rows: the head, and the row before it (whose hash a derived prev_hash is).
const HEAD = `SELECT ${COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT 2`;
const RANGE = `SELECT ${COLUMNS} FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?`;
const DICTIONARY_GET = 'SELECT value FROM audit_dictionary WHERE id = ?';
// Inserts the entry or records a use of the one stored; answers the value
// the table holds (another value under the id is a collision or an edit).
const DICTIONARY_USE = `INSERT INTO audit_dictionary (id, value, last_seq) VALUES (?, ?, ?)
  ON CONFLICT (id) DO UPDATE SET last_seq = max(coalesce(last_seq, 0), excluded.last_seq) RETURNING value`;
const HEX_HASH = /^[0-9a-f]{64}$/;

/** A row as SQLite returns it: a compact row's hash is 32 bytes. */
interface SqliteAuditRow {
  seq: number;
  ts: string;
  prevHash: string;
  hash: string | Buffer;
  event: string;
}

const fromSqlite = (r: SqliteAuditRow): StoredAuditRow => ({
  ...r,
  hash: typeof r.hash === 'string' ? r.hash : r.hash.toString('hex'),
});
const FIRST_SINCE = 'SELECT min(seq) FROM audit_log WHERE ts >= ?';
const INSERT_CHECKPOINT = `INSERT INTO audit_checkpoints (${AUDIT_CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const LAST_CHECKPOINT_SEQ = 'SELECT max(seq) FROM audit_checkpoints';
const CHECKPOINTS = `SELECT ${AUDIT_CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq`;
const CHECKPOINTS_FROM = `SELECT ${AUDIT_CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq >= ? ORDER BY seq LIMIT ?`;
const ARCHIVE_STATE = 'SELECT archive, checkpoint, digest, file, status FROM audit_archive WHERE id = 1';
const SET_ARCHIVE_STATE = `INSERT INTO audit_archive (id, archive, checkpoint, digest, file, status) VALUES (1, ?, ?, ?, ?, ?)
  ON CONFLICT (id) DO UPDATE SET archive = excluded.archive, checkpoint = excluded.checkpoint,
    digest = excluded.digest, file = excluded.file, status = excluded.status`;
// Bounded deletes (one short write transaction each, see deleteArchived): the
// writer lock is held for at most `limit` rows, so appends wait milliseconds.
const DELETE_ARCHIVED_RECORDS =
  'DELETE FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE seq < ? ORDER BY seq LIMIT ?)';
// The record at the anchor stays online while its predecessor goes: a
// derived prev_hash (read back from the row before) is written out first, in
// the same transaction, so the anchor record still reads back whole (an
// export after archival starts with it and must verify).
// prev_hash is text; a hash may be stored as its 32 bytes (see append), read back as hex.
const KEEP_ANCHOR_PREV_HASH = `UPDATE audit_log SET prev_hash = (SELECT CASE typeof(hash) WHEN 'blob'
    THEN lower(hex(hash)) ELSE hash END FROM audit_log WHERE seq = :seq - 1)
  WHERE seq = :seq AND prev_hash = '' AND EXISTS (SELECT 1 FROM audit_log WHERE seq = :seq - 1)`;
const DELETE_ARCHIVED_CHECKPOINTS =
  'DELETE FROM audit_checkpoints WHERE seq IN (SELECT seq FROM audit_checkpoints WHERE seq < ? ORDER BY seq LIMIT ?)';
// Entries no online record can reference (see AUDIT_DICTIONARY_SPAN); a NULL
// last_seq (an entry an earlier version inserted) never matches.
const DELETE_UNUSED_DICTIONARY = `DELETE FROM audit_dictionary WHERE id IN
  (SELECT id FROM audit_dictionary WHERE last_seq < ? ORDER BY last_seq LIMIT ?)`;
// Taken when free, expired or already ours: one statement, so two takers cannot both win.
const ACQUIRE_LEASE = `INSERT INTO audit_archive_lease (id, holder, expires_at) VALUES (1, ?, ?)
  ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
  WHERE audit_archive_lease.holder = excluded.holder OR audit_archive_lease.expires_at < ?`;
const RELEASE_LEASE = 'DELETE FROM audit_archive_lease WHERE id = 1 AND holder = ?';
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
  readonly #appendBatch: Transaction<(records: readonly AuditRecord[]) => Map<string, string>>;
  readonly #dictionary: AuditDictionaryCache;
  /**
   * Runs a read of rows and the dictionary entries they reference in one
   * snapshot: an archive run in another connection deletes records, then
   * the entries only they referenced, and a read between the two must not
   * find its rows without their entries.
   */
  readonly #snapshot: Transaction<(read: () => AuditRecord[]) => AuditRecord[]>;
  readonly #appendCheckpoint: Transaction<(checkpoint: AuditCheckpoint) => void>;
  /** One batch of archived records deleted, the anchor's prev_hash written out first, as one transaction. */
  readonly #deleteArchivedRecords: Transaction<(beforeSeq: number, limit: number) => number>;

  constructor(
    private readonly stmts: SqliteStatements,
    private readonly run: SqliteRunner,
    span?: number,
  ) {
    this.#dictionary = new AuditDictionaryCache(span);
    // better-sqlite3 runs this as its own transaction, or as a savepoint when
    // a custos transaction is open: either way the batch lands whole or not at all.
    this.#appendBatch = stmts.db.transaction((records: readonly AuditRecord[]) => {
      const headRow = this.stmts.get(HEAD_ROW).get() as SqliteAuditRow | undefined;
      const head = headRow?.seq ?? 0;
      // A batch that does not start right after the head was built on a stale
      // view of the chain: the caller re-reads the head and retries.
      if (records[0]!.seq !== head + 1) throw new AuditConflictError();
      // The dictionary entries go in with the records, in this transaction,
      // each with its use recorded unless this store recorded one within
      // the span (the invariant at AUDIT_DICTIONARY_SPAN).
      const last = records.at(-1)!.seq;
      const entries = new Map<string, string>();
      const recorded = new Map<string, string>();
      const use = this.stmts.pluck(DICTIONARY_USE);
      for (const [id, value] of dictionaryCandidates(records)) {
        let stored = this.#dictionary.fresh(id, last);
        if (stored === undefined) {
          stored = use.get(id, value, last) as string;
          recorded.set(id, stored);
        }
        // An id held by another value (a 48-bit collision, or a rewritten
        // entry) is not referenced: those events are stored in full.
        entries.set(id, stored);
      }
      const before = headRow ? fromSqlite(headRow).hash : AUDIT_GENESIS_HASH;
      const insert = this.stmts.get(INSERT);
      for (const r of toStoredRows(records, entries, before)) {
        // 32 bytes instead of 64 hex characters where the hash has the chain's form.
        const hash = HEX_HASH.test(r.hash) ? Buffer.from(r.hash, 'hex') : r.hash;
        insert.run(r.seq, r.ts, r.prevHash, hash, r.event);
      }
      return recorded;
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
    this.#snapshot = stmts.db.transaction((read: () => AuditRecord[]) => read());
    this.#deleteArchivedRecords = stmts.db.transaction((beforeSeq: number, limit: number) => {
      this.stmts.get(KEEP_ANCHOR_PREV_HASH).run({ seq: beforeSeq });
      return this.stmts.get(DELETE_ARCHIVED_RECORDS).run(beforeSeq, limit).changes;
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
        // Inside a custos transaction the batch is a savepoint that the
        // transaction may still roll back: the uses it recorded are then not
        // known to be stored, and are recorded again next time.
        const nested = this.stmts.db.inTransaction;
        const recorded = this.#appendBatch.immediate(records);
        const last = records.at(-1)!.seq;
        if (!nested) for (const [id, value] of recorded) this.#dictionary.add(id, value, last);
      } catch (e) {
        throw isPrimaryKeyViolation(e) ? new AuditConflictError() : e;
      }
    });
  }

  head(): Promise<AuditRecord | undefined> {
    // No snapshot needed: the head is at or above any anchor, so no run deletes its entries.
    return this.run(() => {
      const [head, before] = (this.stmts.get(HEAD).all() as SqliteAuditRow[]).map(fromSqlite);
      return head && this.#records([head], before)[0];
    });
  }

  range(fromSeq: number, limit: number): Promise<AuditRecord[]> {
    return this.run(() =>
      this.#snapshot(() => {
        // One row more, from the one before: a derived prev_hash is its hash.
        const from = Math.max(1, fromSeq - 1);
        const rows = (this.stmts.get(RANGE).all(from, clampLimit(limit) + 1) as SqliteAuditRow[]).map(fromSqlite);
        const before = rows[0] && rows[0].seq < fromSeq ? rows.shift() : undefined;
        return this.#records(rows.slice(0, clampLimit(limit)), before);
      }),
    );
  }

  /** Rows to records: the dictionary entries they reference read from the table (each checked against its id). */
  #records(rows: StoredAuditRow[], before: StoredAuditRow | undefined): AuditRecord[] {
    const found: { id: string; value: string }[] = [];
    for (const id of referencedIds(rows)) {
      const value = this.stmts.pluck(DICTIONARY_GET).get(id) as string | undefined;
      if (value !== undefined) found.push({ id, value });
    }
    return fromStoredRows(rows, genuineEntries(found), before);
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

  archiveState(): Promise<AuditArchiveState | undefined> {
    return this.run(() => {
      const row = this.stmts.get(ARCHIVE_STATE).get() as AuditArchiveRow | undefined;
      return row && auditArchiveFromRow(row);
    });
  }

  setArchiveState(state: AuditArchiveState): Promise<void> {
    return this.run(() => {
      this.stmts.get(SET_ARCHIVE_STATE).run(...auditArchiveValues(state));
    });
  }

  deleteArchived(beforeSeq: number, limit: number): Promise<number> {
    return this.run(() => {
      const n = clampLimit(limit);
      const records = this.#deleteArchivedRecords(beforeSeq, n);
      if (records > 0) return records;
      const checkpoints = this.stmts.get(DELETE_ARCHIVED_CHECKPOINTS).run(beforeSeq, n).changes;
      if (checkpoints > 0) return checkpoints;
      return this.stmts.get(DELETE_UNUSED_DICTIONARY).run(this.#dictionary.collectibleBelow(beforeSeq), n).changes;
    });
  }

  acquireArchiveLease(holder: string, now: number, expiresAt: number): Promise<boolean> {
    return this.run(() => this.stmts.get(ACQUIRE_LEASE).run(holder, expiresAt, now).changes === 1);
  }

  releaseArchiveLease(holder: string): Promise<void> {
    return this.run(() => {
      this.stmts.get(RELEASE_LEASE).run(holder);
    });
  }
}
