import { AdminNotRotatableError, CustosError, type EgressPolicy, EgressSocket, isEgressRefusal } from '@custos/core';
import pg from 'pg';
import { generatePassword, generateUsername } from '../credential-generator.js';
import { credentialUrl } from '../credential-url.js';
import type { DatabaseEngine, EngineRole, IssuedDatabaseCredential } from '../database-engine.js';
import { POSTGRES_DEFAULT_STATEMENTS } from '../default-statements.js';
import { engineStatementFailed, engineUnavailable, invalidStatements, loginRefused } from '../engine-errors.js';
import { engineTlsOptions } from '../engine-tls.js';
import { parseEngineUrl } from '../engine-url.js';
import { withPooledConnection } from '../pooled-connection.js';
import { assertSafeName, formatExpiration, renderStatement } from '../statement-template.js';
import { isPostgresConnectionError, pgCode, UNDEFINED_OBJECT } from './postgres-errors.js';

/** PostgreSQL allows role names up to 63 bytes. */
const MAX_NAME = 63;
/**
 * Serialises this engine's role DDL on one database (held until COMMIT or
 * ROLLBACK). Grants on a shared object (`GRANT … ON SCHEMA public`, `… ON ALL
 * TABLES`) rewrite that object's ACL tuple, and two concurrent transactions
 * doing so fail with "tuple concurrently updated" (seen at 50 concurrent
 * creations in bench/engines.bench.mjs). Across every custos node: the lock is
 * in the database.
 */
const DDL_LOCK =
  "SELECT pg_advisory_xact_lock(hashtext('custos.engines.role-ddl')), set_config('custos.in_txn', 'yes', true)";
/**
 * True while the transaction opened with {@link DDL_LOCK} is still open: the
 * transaction-local setting is gone once a role statement ran COMMIT or
 * ROLLBACK, which would otherwise make a "rolled back" validation keep its
 * user, or a failed creation keep half of it.
 */
async function stillInTransaction(client: pg.PoolClient): Promise<boolean> {
  const { rows } = await client.query<{ v: string | null }>("SELECT current_setting('custos.in_txn', true) AS v");
  return rows[0]?.v === 'yes';
}
const endedTransaction = () =>
  new CustosError('CUSTOS_ERR_VALIDATION', 'The statements must not end the transaction (COMMIT, ROLLBACK, END).');
/** How long revocation waits for terminated sessions to be gone. */
const TERMINATE_WAIT_MS = 5_000;

/** Options of {@link PostgresEngine}. */
export interface PostgresEngineOptions {
  /**
   * `postgres://admin:password@host:port/database[?sslmode=…&connect_timeout=…&application_name=…]`;
   * the admin needs CREATEROLE (and pg_signal_backend) or superuser. Other
   * query parameters are refused (see engine-url.ts).
   */
  readonly url: string;
  /** CA certificates (PEM) the server's certificate must chain to; implies TLS (`sslmode=verify-full` by default). */
  readonly tlsCa?: string;
  /** Connections kept to the database (default 4). */
  readonly poolSize?: number;
  /** Every connection goes through this egress policy (see `EgressSocket`). */
  readonly egress?: EgressPolicy;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The PostgreSQL engine: mints a login role per lease, with `VALID UNTIL` the
 * lease end, and takes it away (no new logins, open sessions terminated,
 * privileges and owned objects removed, role dropped) on revocation.
 */
export class PostgresEngine implements DatabaseEngine {
  readonly type = 'postgres';
  #url: string;
  readonly #tlsCa: string | undefined;
  readonly #poolSize: number;
  readonly #egress: EgressPolicy | undefined;
  #pool: pg.Pool;

  constructor(options: PostgresEngineOptions) {
    this.#url = options.url;
    this.#tlsCa = options.tlsCa;
    this.#poolSize = options.poolSize ?? 4;
    this.#egress = options.egress;
    this.#pool = this.#newPool(this.#url);
  }

  /**
   * Client options every connection shares, built field by field from the
   * parsed URL — never `connectionString`, whose query parameters `pg`
   * would take as options (file paths read on the main thread, another
   * host or user): refused parameters throw here, before any pool exists.
   * The egress policy's socket makes the connection, so whatever host the
   * URL names, the connection made is the one checked.
   */
  #clientConfig(url: string): pg.ClientConfig {
    const egress = this.#egress;
    const parsed = parseEngineUrl('postgres', url);
    const tls = engineTlsOptions(parsed.sslmode, this.#tlsCa);
    const { verifyIdentity: _mysqlOnly, ...ssl } = tls || {};
    return {
      host: parsed.host,
      ...(parsed.port !== undefined ? { port: parsed.port } : {}),
      ...(parsed.user !== undefined ? { user: parsed.user } : {}),
      ...(parsed.password !== undefined ? { password: parsed.password } : {}),
      ...(parsed.database !== undefined ? { database: parsed.database } : {}),
      ...(parsed.applicationName !== undefined ? { application_name: parsed.applicationName } : {}),
      // Always explicit: `pg` would otherwise take it from PGSSLMODE.
      ssl: tls ? ssl : false,
      connectionTimeoutMillis: parsed.connectTimeoutMs ?? 10_000,
      ...(egress ? { stream: () => new EgressSocket(egress) } : {}),
    };
  }

  #newPool(url: string): pg.Pool {
    const pool = new pg.Pool({ ...this.#clientConfig(url), max: this.#poolSize });
    // An idle client losing its connection must not crash the process; the next checkout reconnects.
    pool.on('error', () => undefined);
    return pool;
  }

  /** Runs `fn` on a pooled connection; a connection that failed is destroyed rather than reused. */
  async #withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return withPooledConnection(
      {
        acquire: () => this.#pool.connect(),
        release: (client, broken) => client.release(broken),
        isConnectionError: isPostgresConnectionError,
      },
      fn,
    );
  }

  async verifyConnection(): Promise<void> {
    await this.#withClient(async (client) => {
      const { rows } = await client.query<{ ok: boolean }>(
        'SELECT rolsuper OR rolcreaterole AS ok FROM pg_roles WHERE rolname = current_user',
      );
      if (!rows[0]?.ok) throw new CustosError('CUSTOS_ERR_ENGINE_UNAVAILABLE', 'The admin user cannot create roles.');
    });
  }

  async validateRole(role: EngineRole): Promise<void> {
    const name = generateUsername('validate', MAX_NAME);
    const password = generatePassword();
    const expiration = new Date(Date.now() + 3_600_000);
    await this.#withClient(async (client) => {
      await client.query('BEGIN');
      await client.query(DDL_LOCK);
      try {
        // Both lists run, creation then revocation, so a typo in either is
        // refused now; ROLLBACK undoes every effect (PostgreSQL DDL is transactional).
        for (const s of creation(role))
          await client.query(renderStatement(s, { name, password, expiration }, 'postgres'));
        if (!(await stillInTransaction(client))) throw endedTransaction();
        await assertLoginRole(client, name);
        for (const s of revocation(role)) await client.query(renderStatement(s, { name }, 'postgres'));
        if (!(await stillInTransaction(client))) throw endedTransaction();
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        await this.#dropQuietly(name, client);
        if (isPostgresConnectionError(e)) throw e;
        throw invalidStatements(e, [password]);
      }
      await client.query('ROLLBACK');
    });
  }

  async createCredential(
    role: EngineRole,
    options: { expiresAt: Date; usernamePrefix: string },
  ): Promise<IssuedDatabaseCredential> {
    const name = generateUsername(options.usernamePrefix, MAX_NAME);
    const password = generatePassword();
    const expiration = formatExpiration(options.expiresAt, 'postgres');
    try {
      await this.#withClient(async (client) => {
        await client.query('BEGIN');
        await client.query(DDL_LOCK);
        try {
          for (const s of creation(role)) {
            await client.query(renderStatement(s, { name, password, expiration: options.expiresAt }, 'postgres'));
          }
          if (!(await stillInTransaction(client))) throw endedTransaction();
          await assertLoginRole(client, name);
          // Whatever the role's statements said, the database itself refuses
          // this login after the lease end, even if custos is down then.
          await client.query(`ALTER ROLE "${name}" VALID UNTIL '${expiration}'`);
        } catch (e) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
        await client.query('COMMIT');
      });
    } catch (e) {
      // A COMMIT whose answer was lost may have happened, or a statement may
      // have committed on its own: make sure the role does not outlive us.
      await this.#dropQuietly(name);
      if (e instanceof CustosError) throw e;
      throw engineStatementFailed('Creating the database user failed', e, [password]);
    }
    return { username: name, password, expiresAt: options.expiresAt };
  }

  /** Best-effort removal of a user a failed creation or validation may have left (on `client` when given). */
  async #dropQuietly(name: string, client?: pg.PoolClient): Promise<void> {
    const drop = client
      ? this.#revokeOn(client, POSTGRES_DEFAULT_ROLE, name)
      : this.revokeCredential(POSTGRES_DEFAULT_ROLE, name);
    await drop.catch(() => undefined);
  }

  async renewCredential(username: string, expiresAt: Date): Promise<void> {
    assertSafeName(username);
    const expiration = formatExpiration(expiresAt, 'postgres');
    await this.#withClient(async (client) => {
      try {
        await client.query(`ALTER ROLE "${username}" VALID UNTIL '${expiration}'`);
      } catch (e) {
        if (pgCode(e) === UNDEFINED_OBJECT) {
          throw new CustosError('CUSTOS_ERR_LEASE_NOT_FOUND', 'The database user no longer exists.');
        }
        if (isPostgresConnectionError(e)) throw e;
        throw engineStatementFailed('Renewing the database user failed', e, []);
      }
    });
  }

  async revokeCredential(role: EngineRole, username: string): Promise<void> {
    assertSafeName(username);
    await this.#withClient((client) => this.#revokeOn(client, role, username));
  }

  async #revokeOn(client: pg.PoolClient, role: EngineRole, username: string): Promise<void> {
    const quoted = `"${username}"`;
    const { rows } = await client.query<{ oid: number }>('SELECT oid FROM pg_roles WHERE rolname = $1', [username]);
    const oid = rows[0]?.oid;
    if (oid === undefined) return; // already gone: revocation is idempotent
    try {
      // Order matters: first no new sessions, then end the open ones, so
      // nothing can hold the role's privileges while they are removed.
      await client.query(`ALTER ROLE ${quoted} NOLOGIN`);
      await terminateSessions(client, oid);
      await client.query('BEGIN');
      await client.query(DDL_LOCK);
      try {
        for (const s of revocation(role)) await client.query(renderStatement(s, { name: username }, 'postgres'));
        // Objects the user created are handed to the admin, and every
        // privilege left on this database is dropped, so DROP ROLE cannot
        // fail on dependencies here. (Dependencies in *other* databases of
        // the cluster must be covered by the role's revocation statements.)
        await client.query(`REASSIGN OWNED BY ${quoted} TO CURRENT_USER`);
        await client.query(`DROP OWNED BY ${quoted}`);
        await client.query(`DROP ROLE IF EXISTS ${quoted}`);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
      // A session that was already past authentication when NOLOGIN landed.
      await terminateSessions(client, oid);
    } catch (e) {
      if (pgCode(e) === UNDEFINED_OBJECT) return; // a concurrent revocation won
      if (isPostgresConnectionError(e) || e instanceof CustosError) throw e;
      throw engineStatementFailed('Revoking the database user failed', e, []);
    }
  }

  async setPassword(username: string, password: string): Promise<void> {
    if (!password) throw new CustosError('CUSTOS_ERR_VALIDATION', 'The password is empty.');
    await this.#withClient(async (client) => {
      // The account custos works as (and the one it logged in as) is never a
      // rotation target: that would hand its password to a secret's readers.
      const { rows } = await client.query<{ current: string; session: string }>(
        'SELECT current_user AS current, session_user AS session',
      );
      if (rows[0]?.current === username || rows[0]?.session === username) throw new AdminNotRotatableError();
      try {
        // A static user's name was not generated by custos: escape rather than validate.
        await client.query(
          `ALTER ROLE ${client.escapeIdentifier(username)} WITH PASSWORD ${client.escapeLiteral(password)}`,
        );
      } catch (e) {
        if (pgCode(e) === UNDEFINED_OBJECT) throw new CustosError('CUSTOS_ERR_NOT_FOUND', 'No such database user.');
        if (isPostgresConnectionError(e)) throw e;
        throw engineStatementFailed('Setting the password failed', e, [password]);
      }
    });
  }

  async testCredential(username: string, password: string): Promise<void> {
    // A fresh client, never the pool: the point is a new authentication.
    const client = new pg.Client(this.#clientConfig(credentialUrl(this.#url, username, password)));
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
    } catch (e) {
      if (isEgressRefusal(e)) throw e;
      // Refused logins are SQLSTATE 28xxx, which the pool treats as "admin
      // refused": here they mean the credential under test is wrong.
      if (isPostgresConnectionError(e) && !pgCode(e)?.startsWith('28')) throw engineUnavailable();
      throw loginRefused(e, [password]);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async rotateRootPassword(): Promise<{ url: string }> {
    const password = generatePassword();
    const next = new URL(this.#url);
    next.password = password;
    const oldPassword = decodeURIComponent(new URL(this.#url).password);
    await this.#withClient(async (client) => {
      try {
        await client.query(`ALTER ROLE CURRENT_USER WITH PASSWORD '${password}'`);
      } catch (e) {
        if (isPostgresConnectionError(e)) throw e;
        throw engineStatementFailed('Rotating the admin password failed', e, [password, oldPassword]);
      }
      if (!(await canLogin(this.#clientConfig(next.toString())))) {
        // This session is still authenticated: put the old password back
        // rather than leave an admin nobody can log in as.
        if (oldPassword) {
          await client.query(`ALTER ROLE CURRENT_USER WITH PASSWORD ${client.escapeLiteral(oldPassword)}`);
        }
        throw new CustosError(
          'CUSTOS_ERR_ENGINE_UNAVAILABLE',
          'A login with the new admin password failed; kept the old one.',
        );
      }
    });
    const old = this.#pool;
    this.#url = next.toString();
    this.#pool = this.#newPool(this.#url);
    await old.end().catch(() => undefined);
    return { url: this.#url };
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

const POSTGRES_DEFAULT_ROLE: EngineRole = {
  name: 'default',
  creationStatements: [],
  revocationStatements: [],
  defaultTtlMs: 0,
  maxTtlMs: 0,
};

const creation = (role: EngineRole) =>
  role.creationStatements.length > 0 ? role.creationStatements : POSTGRES_DEFAULT_STATEMENTS.creationStatements;
const revocation = (role: EngineRole) =>
  role.revocationStatements.length > 0 ? role.revocationStatements : POSTGRES_DEFAULT_STATEMENTS.revocationStatements;

/** The statements must have made `name` a role that can log in; otherwise the credential would be useless. */
async function assertLoginRole(client: pg.PoolClient, name: string): Promise<void> {
  const { rows } = await client.query<{ rolcanlogin: boolean }>('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [
    name,
  ]);
  if (!rows[0]?.rolcanlogin) {
    throw new CustosError('CUSTOS_ERR_VALIDATION', 'The creation statements must create a LOGIN role named {{name}}.');
  }
}

/** Terminates every session of the role and waits until they are gone. */
async function terminateSessions(client: pg.PoolClient, oid: number): Promise<void> {
  const deadline = Date.now() + TERMINATE_WAIT_MS;
  for (;;) {
    const { rows } = await client.query<{ pid: number }>(
      'SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE usesysid = $1 AND pid <> pg_backend_pid()',
      [oid],
    );
    if (rows.length === 0 || Date.now() > deadline) return;
    await sleep(10);
  }
}

/** True when a fresh connection with `config` can run a query. */
async function canLogin(config: pg.ClientConfig): Promise<boolean> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}
