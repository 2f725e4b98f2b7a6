/** An engine as stored (sealed): its admin URL never leaves the barrier. */
export interface EngineRecord {
  name: string;
  type: 'postgres' | 'mysql';
  url: string;
  /**
   * Static users of this database whose passwords a database rotator may
   * change, set by whoever configures the engine. Never the engine's own
   * admin account (that one changes only through `rotate-root`). Absent in
   * records written before the list existed: none then.
   */
  rotatable_users?: string[];
  /**
   * CA certificates (PEM) the database's TLS certificate must chain to,
   * given inline (a path would have custos read whatever file it names).
   * Implies TLS. Public material, shown by `read`; absent: the system CAs,
   * and TLS only if the URL's `sslmode` asks for it.
   */
  tls_ca?: string;
  created_time: string;
  updated_time: string;
  root_rotated_time: string | null;
}

/** An engine as shown to callers: never the URL or its credential. */
export type EngineView = Omit<EngineRecord, 'url' | 'rotatable_users'> & { rotatable_users: string[] };

/** A role of an engine as stored and shown (statements are not secret). */
export interface EngineRoleRecord {
  engine: string;
  name: string;
  creation_statements: string[];
  revocation_statements: string[];
  default_ttl_ms: number;
  max_ttl_ms: number;
  created_time: string;
  updated_time: string;
}

export interface EngineRoleInput {
  creation_statements?: string[];
  revocation_statements?: string[];
  default_ttl_ms?: number;
  max_ttl_ms?: number;
}
