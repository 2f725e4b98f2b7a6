import { createHash } from 'node:crypto';
import type { QueryConfig } from 'pg';
import { AUDIT_CHECKPOINT_COLUMNS } from '../shared/audit-checkpoint-row.js';
import type { KeyRange } from '../shared/key-range.js';

/** One named (server-side prepared, cached per connection) statement. */
export interface NamedQuery {
  readonly name: string;
  readonly text: string;
}

function named(text: string): NamedQuery {
  // The name is derived from the text, so two storages with different schemas
  // never reuse one name for different SQL on a connection.
  return { name: `custos_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text };
}

/** Binds values to a named query. */
export function bind(q: NamedQuery, values: unknown[]): QueryConfig {
  return { name: q.name, text: q.text, values };
}

/** Quotes a validated schema name as an identifier. */
export function quoteSchema(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new RangeError('The PostgreSQL schema name must match [a-z_][a-z0-9_]{0,62}.');
  }
  return `"${schema}"`;
}

function rangeQueries(s: string, columns: string): NamedQuery[] {
  // Index 0..3 = (lowerInclusive ? 0 : 1) + (bounded ? 0 : 2); see rangeIndex.
  return [
    `key >= $2 AND key < $3 ORDER BY key LIMIT $4`,
    `key > $2 AND key < $3 ORDER BY key LIMIT $4`,
    `key >= $2 ORDER BY key LIMIT $3`,
    `key > $2 ORDER BY key LIMIT $3`,
  ].map((tail) => named(`SELECT ${columns} FROM ${s}.entries WHERE namespace = $1 AND ${tail}`));
}

/** Which of the four range queries serves `range`, and its parameters. */
export function rangeQuery(
  queries: readonly NamedQuery[],
  namespace: string,
  range: KeyRange,
  limit: number,
): QueryConfig {
  const index = (range.lowerInclusive ? 0 : 1) + (range.upper === undefined ? 2 : 0);
  const values =
    range.upper === undefined ? [namespace, range.lower, limit] : [namespace, range.lower, range.upper, limit];
  return bind(queries[index]!, values);
}

/** Every statement the PostgreSQL stores run, for one schema. */
export function postgresQueries(schema: string) {
  const s = quoteSchema(schema);
  const audit = 'seq, ts, prev_hash, hash, event';
  const checkpoint = AUDIT_CHECKPOINT_COLUMNS;
  return {
    get: named(`SELECT value, expires_at FROM ${s}.entries WHERE namespace = $1 AND key = $2`),
    // Inside a transaction a read locks the row, so read-modify-write inside
    // one transaction is safe at READ COMMITTED (a concurrent writer waits).
    getForUpdate: named(`SELECT value, expires_at FROM ${s}.entries WHERE namespace = $1 AND key = $2 FOR UPDATE`),
    put: named(`INSERT INTO ${s}.entries (namespace, key, value, expires_at) VALUES ($1, $2, $3, $4)
      ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`),
    putIfAbsent: named(`INSERT INTO ${s}.entries (namespace, key, value, expires_at) VALUES ($1, $2, $3, $4)
      ON CONFLICT (namespace, key) DO NOTHING`),
    delete: named(`DELETE FROM ${s}.entries WHERE namespace = $1 AND key = $2`),
    list: rangeQueries(s, 'key'),
    scan: rangeQueries(s, 'key, value, expires_at'),
    listExpired: named(`SELECT key FROM ${s}.entries
      WHERE namespace = $1 AND expires_at IS NOT NULL AND expires_at <= $2 ORDER BY expires_at, key LIMIT $3`),
    // One statement, so atomic on its own: it inserts the whole batch only if
    // it starts right after the head; a concurrent appender of the same seqs
    // makes it fail with a unique violation instead.
    append: named(`INSERT INTO ${s}.audit_log (${audit})
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
      WHERE (SELECT coalesce(max(seq), 0) FROM ${s}.audit_log) = $6::bigint`),
    head: named(`SELECT ${audit} FROM ${s}.audit_log ORDER BY seq DESC LIMIT 2`),
    // Content-addressed entries, inserted or their use recorded at $3 (the
    // batch's last seq); answers the value the table holds for each. In id
    // order, so two writers locking overlapping entries never wait in a cycle.
    dictionaryUse: named(`INSERT INTO ${s}.audit_dictionary AS d (id, value, last_seq)
      SELECT u.id, u.value, $3::bigint FROM unnest($1::text[], $2::text[]) AS u (id, value) ORDER BY u.id COLLATE "C"
      ON CONFLICT (id) DO UPDATE SET last_seq = greatest(d.last_seq, EXCLUDED.last_seq) RETURNING id, value`),
    dictionaryGet: named(`SELECT id, value FROM ${s}.audit_dictionary WHERE id = ANY($1::text[])`),
    range: named(`SELECT ${audit} FROM ${s}.audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2`),
    firstSeqSince: named(`SELECT min(seq) AS seq FROM ${s}.audit_log WHERE ts >= $1`),
    appendCheckpoint: named(
      `INSERT INTO ${s}.audit_checkpoints (${checkpoint}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    ),
    // A chained (v2) checkpoint goes in only after the last one stored ($11).
    // Two nodes racing on the same predecessor both pass the WHERE, and the
    // unique index on prev_seq lets one win.
    appendChainedCheckpoint: named(`INSERT INTO ${s}.audit_checkpoints (${checkpoint})
      SELECT $1::bigint, $2::text, $3::text, $4::text, $5::text, $6::smallint, $7::bigint, $8::text, $9::bigint, $10::bigint
      WHERE (SELECT coalesce(max(seq), 0) FROM ${s}.audit_checkpoints) = $11::bigint`),
    checkpoints: named(`SELECT ${checkpoint} FROM ${s}.audit_checkpoints ORDER BY seq`),
    checkpointsFrom: named(`SELECT ${checkpoint} FROM ${s}.audit_checkpoints WHERE seq >= $1 ORDER BY seq LIMIT $2`),
    lastCheckpoint: named(`SELECT ${checkpoint} FROM ${s}.audit_checkpoints ORDER BY seq DESC LIMIT 1`),
    archiveState: named(`SELECT archive, checkpoint, digest, file, status FROM ${s}.audit_archive WHERE id = 1`),
    setArchiveState: named(`INSERT INTO ${s}.audit_archive (id, archive, checkpoint, digest, file, status)
      VALUES (1, $1, $2, $3, $4, $5)
      ON CONFLICT (id) DO UPDATE SET archive = EXCLUDED.archive, checkpoint = EXCLUDED.checkpoint,
        digest = EXCLUDED.digest, file = EXCLUDED.file, status = EXCLUDED.status`),
    // Bounded deletes by the primary key: each statement is its own short
    // transaction that locks at most $2 rows, so appends (at the other end
    // of the seq range) never wait on an archive run.
    deleteArchivedRecords: named(`DELETE FROM ${s}.audit_log WHERE seq IN
      (SELECT seq FROM ${s}.audit_log WHERE seq < $1 ORDER BY seq LIMIT $2)`),
    // The anchor record stays while its predecessor goes: its derived prev_hash is written out first (see the SQLite store).
    keepAnchorPrevHash: named(`UPDATE ${s}.audit_log SET prev_hash = p.hash FROM ${s}.audit_log p
      WHERE ${s}.audit_log.seq = $1 AND ${s}.audit_log.prev_hash = '' AND p.seq = $1 - 1`),
    // Taken when free, expired or already ours: one statement, so two nodes cannot both win.
    acquireArchiveLease: named(`INSERT INTO ${s}.audit_archive_lease (id, holder, expires_at) VALUES (1, $1, $2)
      ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
      WHERE ${s}.audit_archive_lease.holder = EXCLUDED.holder OR ${s}.audit_archive_lease.expires_at < $3`),
    releaseArchiveLease: named(`DELETE FROM ${s}.audit_archive_lease WHERE id = 1 AND holder = $1`),
    deleteArchivedCheckpoints: named(`DELETE FROM ${s}.audit_checkpoints WHERE seq IN
      (SELECT seq FROM ${s}.audit_checkpoints WHERE seq < $1 ORDER BY seq LIMIT $2)`),
    // Entries no online record can reference (see AUDIT_DICTIONARY_SPAN).
    // SKIP LOCKED: an entry a writer is recording a use of right now is left
    // for the next run, so the delete never waits on a writer (which waits on
    // it after), and the two can never deadlock. A locked row is checked
    // again at its newest version, so a use committed meanwhile keeps it.
    deleteUnusedDictionary: named(`DELETE FROM ${s}.audit_dictionary WHERE id IN
      (SELECT id FROM ${s}.audit_dictionary WHERE last_seq < $1 ORDER BY last_seq LIMIT $2 FOR UPDATE SKIP LOCKED)`),
  };
}

export type PostgresQueries = ReturnType<typeof postgresQueries>;
