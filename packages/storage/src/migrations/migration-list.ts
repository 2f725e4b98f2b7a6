/**
 * One schema change, in both dialects. Migrations are append-only: a released
 * one is never edited, a change is a new entry with the next version.
 *
 * PostgreSQL text is a function of the quoted schema name, so tests (and
 * deployments sharing a database) can isolate custos in its own schema.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sqlite: string;
  readonly postgres: (schema: string) => string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'entries and audit log',
    // WITHOUT ROWID: the primary key is the clustered index, so a prefix scan
    // reads rows in key order with no second lookup. BINARY collation compares
    // UTF-8 bytes.
    sqlite: `
      CREATE TABLE entries (
        namespace  TEXT    NOT NULL COLLATE BINARY,
        key        TEXT    NOT NULL COLLATE BINARY,
        value      BLOB    NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (namespace, key)
      ) WITHOUT ROWID;
      CREATE INDEX entries_expiry ON entries (namespace, expires_at, key) WHERE expires_at IS NOT NULL;

      CREATE TABLE audit_log (
        seq       INTEGER PRIMARY KEY CHECK (seq > 0),
        ts        TEXT    NOT NULL COLLATE BINARY,
        prev_hash TEXT    NOT NULL,
        hash      TEXT    NOT NULL,
        event     TEXT    NOT NULL
      );
      CREATE INDEX audit_log_ts ON audit_log (ts);

      CREATE TABLE audit_checkpoints (
        seq       INTEGER PRIMARY KEY CHECK (seq > 0),
        hash      TEXT    NOT NULL,
        ts        TEXT    NOT NULL,
        key_id    TEXT    NOT NULL,
        signature TEXT    NOT NULL
      );
    `,
    // COLLATE "C" compares bytes, so key order and prefix ranges match SQLite.
    postgres: (s) => `
      CREATE TABLE ${s}.entries (
        namespace  text   COLLATE "C" NOT NULL,
        key        text   COLLATE "C" NOT NULL,
        value      bytea  NOT NULL,
        expires_at bigint,
        PRIMARY KEY (namespace, key)
      );
      CREATE INDEX entries_expiry ON ${s}.entries (namespace, expires_at, key) WHERE expires_at IS NOT NULL;

      CREATE TABLE ${s}.audit_log (
        seq       bigint PRIMARY KEY CHECK (seq > 0),
        ts        text   COLLATE "C" NOT NULL,
        prev_hash text   NOT NULL,
        hash      text   NOT NULL,
        event     text   NOT NULL
      );
      CREATE INDEX audit_log_ts ON ${s}.audit_log (ts);

      CREATE TABLE ${s}.audit_checkpoints (
        seq       bigint PRIMARY KEY CHECK (seq > 0),
        hash      text   NOT NULL,
        ts        text   NOT NULL,
        key_id    text   NOT NULL,
        signature text   NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'chained audit checkpoints',
    // v2 checkpoints name their predecessor. Existing rows are v1 (no link).
    // The unique index on prev_seq makes a fork impossible: two nodes racing
    // to chain a checkpoint to the same predecessor cannot both succeed
    // (NULLs, the v1 rows, are distinct in both databases).
    sqlite: `
      ALTER TABLE audit_checkpoints ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE audit_checkpoints ADD COLUMN prev_seq INTEGER;
      ALTER TABLE audit_checkpoints ADD COLUMN prev_digest TEXT;
      ALTER TABLE audit_checkpoints ADD COLUMN every INTEGER;
      ALTER TABLE audit_checkpoints ADD COLUMN interval_ms INTEGER;
      CREATE UNIQUE INDEX audit_checkpoints_prev ON audit_checkpoints (prev_seq);
    `,
    postgres: (s) => `
      ALTER TABLE ${s}.audit_checkpoints
        ADD COLUMN version     smallint NOT NULL DEFAULT 1,
        ADD COLUMN prev_seq    bigint,
        ADD COLUMN prev_digest text,
        ADD COLUMN every       bigint,
        ADD COLUMN interval_ms bigint;
      CREATE UNIQUE INDEX audit_checkpoints_prev ON ${s}.audit_checkpoints (prev_seq);
    `,
  },
  {
    version: 3,
    name: 'compact audit events',
    // The dictionary that compact audit events reference (docs/audit.md,
    // "Stored form"). Entries are content-addressed (id = first 48 bits of
    // SHA-256 of the value), so nodes add them without coordination and a
    // reader checks each one. Existing audit_log rows are left as they are:
    // a full event and both hashes, which the stores read as before. New rows
    // may hold a compact event, an empty prev_hash (the hash of the row before
    // it) and, on SQLite, the hash as 32 bytes.
    sqlite: `
      CREATE TABLE audit_dictionary (
        id    TEXT NOT NULL PRIMARY KEY COLLATE BINARY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
    `,
    postgres: (s) => `
      CREATE TABLE ${s}.audit_dictionary (
        id    text COLLATE "C" PRIMARY KEY,
        value text NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: 'audit archive state',
    // One row (docs/audit.md, "Archival"): the last archive's number, its
    // last checkpoint (the online chain's anchor, as its JSON line), its
    // file's SHA-256 and name, and the journal status of the run; and the
    // lease that lets one node of a cluster archive at a time.
    sqlite: `
      CREATE TABLE audit_archive (
        id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
        archive    INTEGER NOT NULL,
        checkpoint TEXT NOT NULL,
        digest     TEXT NOT NULL,
        file       TEXT NOT NULL,
        status     TEXT NOT NULL
      );
      CREATE TABLE audit_archive_lease (
        id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
        holder     TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      );
    `,
    postgres: (s) => `
      CREATE TABLE ${s}.audit_archive (
        id         smallint PRIMARY KEY CHECK (id = 1),
        archive    bigint NOT NULL,
        checkpoint text NOT NULL,
        digest     text NOT NULL,
        file       text NOT NULL,
        status     text NOT NULL
      );
      CREATE TABLE ${s}.audit_archive_lease (
        id         smallint PRIMARY KEY CHECK (id = 1),
        holder     text NOT NULL,
        expires_at bigint NOT NULL
      );
    `,
  },
  {
    version: 5,
    name: 'audit dictionary collection',
    // Each dictionary entry records the highest seq known to reference it
    // (docs/audit.md, "The dictionary"), so an archive run can delete the
    // entries no online record can reference. Entries already stored take the
    // current head: every record that references them is at or below it. An
    // entry a node of an earlier version inserts afterwards has none (NULL)
    // and is kept, because such a node never records its uses.
    sqlite: `
      ALTER TABLE audit_dictionary ADD COLUMN last_seq INTEGER;
      UPDATE audit_dictionary SET last_seq = (SELECT coalesce(max(seq), 0) FROM audit_log);
      CREATE INDEX audit_dictionary_last_seq ON audit_dictionary (last_seq);
    `,
    postgres: (s) => `
      ALTER TABLE ${s}.audit_dictionary ADD COLUMN last_seq bigint;
      UPDATE ${s}.audit_dictionary SET last_seq = (SELECT coalesce(max(seq), 0) FROM ${s}.audit_log);
      CREATE INDEX audit_dictionary_last_seq ON ${s}.audit_dictionary (last_seq);
    `,
  },
];
