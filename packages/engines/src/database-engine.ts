import type { EgressPolicy } from '@custos/core';

/**
 * The dynamic-secret engine interface: everything custos needs from a
 * database to mint a per-task user and take it away again. Adding an engine
 * is one folder implementing this.
 */

/** A role of an engine: what a minted user may do, and for how long. */
export interface EngineRole {
  readonly name: string;
  /** Statements run (in one transaction) to create the user. Placeholders: {{name}}, {{password}}, {{expiration}}. */
  readonly creationStatements: readonly string[];
  /** Statements run to revoke the user's grants before it is dropped. Placeholder: {{name}}. Empty = built-in. */
  readonly revocationStatements: readonly string[];
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
}

/** A freshly minted database credential. The password is shown once. */
export interface IssuedDatabaseCredential {
  readonly username: string;
  readonly password: string;
  readonly expiresAt: Date;
}

export interface DatabaseEngine {
  /** `postgres` | `mysql`. */
  readonly type: string;
  /** Connects with the admin credential and checks it can create users; throws a CustosError otherwise. */
  verifyConnection(): Promise<void>;
  /**
   * Checks a role's statements against the database without keeping any
   * effect (run in a transaction that is rolled back, with a throwaway name),
   * so invalid SQL is refused when the role is written, not when an agent
   * needs a credential.
   */
  validateRole(role: EngineRole): Promise<void>;
  /** Creates a new user with a random name and a strong random password, valid until `expiresAt`. */
  createCredential(
    role: EngineRole,
    options: { expiresAt: Date; usernamePrefix: string },
  ): Promise<IssuedDatabaseCredential>;
  /** Extends a user's validity (e.g. `VALID UNTIL`). */
  renewCredential(username: string, expiresAt: Date): Promise<void>;
  /**
   * Takes a user away for good: refuse new logins, terminate its open
   * sessions, revoke its privileges, drop it. Idempotent: a user that no
   * longer exists is success.
   */
  revokeCredential(role: EngineRole, username: string): Promise<void>;
  /**
   * Sets the password of an existing (static) user, for rotation. Refuses
   * (CUSTOS_ERR_USER_NOT_ROTATABLE) the account the engine is connected as,
   * whatever the caller checked: that one changes only through
   * {@link rotateRootPassword}.
   */
  setPassword(username: string, password: string): Promise<void>;
  /**
   * Tries a login: opens a new connection to the engine's database (the admin
   * URL's host, port and database) as `username` with `password`, runs
   * `SELECT 1` and closes it. Throws `CUSTOS_ERR_ROTATION_FAILED` when the
   * login is refused (the message never holds the password), or
   * `CUSTOS_ERR_ENGINE_UNAVAILABLE` when the server cannot be reached.
   */
  testCredential(username: string, password: string): Promise<void>;
  /**
   * Replaces the admin password custos connects with; returns the new
   * connection URL (which custos stores behind the barrier, so no human knows it).
   */
  rotateRootPassword(): Promise<{ url: string }>;
  close(): Promise<void>;
}

/** How to reach an engine's database: a URL with the admin credential in it. */
export interface EngineConnection {
  readonly type: 'postgres' | 'mysql';
  /** Query parameters: `sslmode`, `connect_timeout` (and `application_name` for PostgreSQL) only. */
  readonly url: string;
  /** CA certificates (PEM) for TLS to the database; implies TLS. Never a path. */
  readonly tlsCa?: string;
  /**
   * Every connection the engine opens (pool, login tests, root rotation)
   * goes through this policy; absent, the engine connects wherever its URL
   * says (library use without custos's server).
   */
  readonly egress?: EgressPolicy;
}
