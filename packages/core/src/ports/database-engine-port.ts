import type { EgressPolicy } from '../egress/egress-policy.js';

/**
 * The port through which core drives dynamic-secret engines. Core never
 * imports a database driver: the server wiring passes a
 * {@link DatabaseEngineFactory} (normally `createEngine` from
 * `@custos/engines`, whose `DatabaseEngine` is structurally this interface).
 */

/** A role of an engine: what a minted user may do, and for how long. */
export interface EngineRolePort {
  readonly name: string;
  /** Statements run (in one transaction) to create the user. Placeholders: {{name}}, {{password}}, {{expiration}}. */
  readonly creationStatements: readonly string[];
  /** Statements run to revoke the user's grants before it is dropped. Placeholder: {{name}}. Empty = built-in. */
  readonly revocationStatements: readonly string[];
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
}

/** A freshly minted database credential. The password is shown once. */
export interface IssuedDatabaseCredentialPort {
  readonly username: string;
  readonly password: string;
  readonly expiresAt: Date;
}

/** What core needs from one configured database. */
export interface DatabaseEnginePort {
  readonly type: string;
  verifyConnection(): Promise<void>;
  validateRole(role: EngineRolePort): Promise<void>;
  createCredential(
    role: EngineRolePort,
    options: { expiresAt: Date; usernamePrefix: string },
  ): Promise<IssuedDatabaseCredentialPort>;
  renewCredential(username: string, expiresAt: Date): Promise<void>;
  /** Idempotent: a user that no longer exists is success. */
  revokeCredential(role: EngineRolePort, username: string): Promise<void>;
  /** Refuses (CUSTOS_ERR_USER_NOT_ROTATABLE) the account the engine itself is connected as. */
  setPassword(username: string, password: string): Promise<void>;
  /** Logs in anew as `username`/`password` and runs `SELECT 1`; `CUSTOS_ERR_ROTATION_FAILED` when refused. */
  testCredential(username: string, password: string): Promise<void>;
  rotateRootPassword(): Promise<{ url: string }>;
  close(): Promise<void>;
}

/** How to reach an engine's database: a URL with the admin credential in it. */
export interface EngineConnectionPort {
  readonly type: 'postgres' | 'mysql';
  /**
   * The admin URL. A factory must refuse (CUSTOS_ERR_ENGINE_URL_REFUSED) any
   * query parameter its driver would take as an option beyond a harmless
   * allow-list, and never hand the URL to the driver whole.
   */
  readonly url: string;
  /** CA certificates (PEM) for TLS to the database; implies TLS. */
  readonly tlsCa?: string;
  /** Every connection the engine opens goes through this policy (see `EgressSocket`). */
  readonly egress?: EgressPolicy;
}

/** Opens an engine for a connection (does not connect yet). */
export type DatabaseEngineFactory = (connection: EngineConnectionPort) => DatabaseEnginePort;
