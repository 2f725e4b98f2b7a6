import { AdminNotRotatableError, CustosError, type EgressPolicy, EgressSocket, isEgressRefusal } from '@custos/core';
import mysql from 'mysql2/promise';
import { generatePassword, generateUsername } from '../credential-generator.js';
import { credentialUrl } from '../credential-url.js';
import type { DatabaseEngine, EngineRole, IssuedDatabaseCredential } from '../database-engine.js';
import { type DefaultStatements, mysqlDefaultStatements } from '../default-statements.js';
import { engineStatementFailed, engineUnavailable, invalidStatements, loginRefused } from '../engine-errors.js';
import { engineTlsOptions } from '../engine-tls.js';
import { parseEngineUrl } from '../engine-url.js';
import { withPooledConnection } from '../pooled-connection.js';
import { assertSafeName, renderStatement } from '../statement-template.js';
import { isMysqlConnectionError, mysqlCode } from './mysql-errors.js';

/** MySQL 5.7/8 allow user names of 32 characters (MariaDB 80): stay within both. */
const MAX_NAME = 32;

/** Options of {@link MysqlEngine}. */
export interface MysqlEngineOptions {
  /**
   * `mysql://admin:password@host:port/database[?sslmode=…&connect_timeout=…]`; the admin needs
   * CREATE USER, GRANT OPTION, and CONNECTION ADMIN/SUPER (for KILL). Other
   * query parameters are refused (see engine-url.ts).
   */
  readonly url: string;
  /** CA certificates (PEM) the server's certificate must chain to; implies TLS (`sslmode=verify-full` by default). */
  readonly tlsCa?: string;
  /** Connections kept to the server (default 4). */
  readonly poolSize?: number;
  /** Every connection goes through this egress policy (see `EgressSocket`). */
  readonly egress?: EgressPolicy;
}

type Connection = mysql.PoolConnection;

/**
 * The MySQL/MariaDB engine.
 *
 * Expiry: MySQL has no `VALID UNTIL`, so the database itself does not end a
 * user at the lease end; custos's lease expiry revokes it (lock, kill its
 * sessions, revoke, drop). `renewCredential` therefore only checks the user
 * still exists.
 */
export class MysqlEngine implements DatabaseEngine {
  readonly type = 'mysql';
  #url: string;
  readonly #tlsCa: string | undefined;
  readonly #poolSize: number;
  readonly #egress: EgressPolicy | undefined;
  #pool: mysql.Pool;
  readonly #defaults: DefaultStatements;

  constructor(options: MysqlEngineOptions) {
    this.#url = options.url;
    this.#tlsCa = options.tlsCa;
    this.#poolSize = options.poolSize ?? 4;
    this.#egress = options.egress;
    this.#pool = this.#newPool(this.#url);
    this.#defaults = mysqlDefaultStatements(parseEngineUrl('mysql', this.#url).database);
  }

  #newPool(url: string): mysql.Pool {
    // multipleStatements: one element of a role's statement list may hold
    // several statements, as PostgreSQL allows. Safe because every value put
    // into a statement is validated to a quote-free shape (statement-template.ts).
    const pool = mysql.createPool({
      ...this.#connectionConfig(url),
      connectionLimit: this.#poolSize,
      multipleStatements: true,
    });
    pool.on('connection', (c) => c.on('error', () => undefined));
    return pool;
  }

  /**
   * Options every connection shares, built field by field from the parsed
   * URL — never `uri`, from whose query mysql2 takes *any* of its options
   * (`debug`, `socketPath`, `localAddress`, `flags`, `host`, `user`, …):
   * refused parameters throw here, before any pool exists. The egress
   * policy's socket makes the connection (mysql2 calls `stream` instead of
   * connecting itself), so the connection made is the one checked.
   */
  #connectionConfig(url: string): mysql.ConnectionOptions {
    const egress = this.#egress;
    const parsed = parseEngineUrl('mysql', url);
    const tls = engineTlsOptions(parsed.sslmode, this.#tlsCa);
    const { checkServerIdentity: _pgOnly, ...ssl } = tls || {};
    return {
      host: parsed.host,
      ...(parsed.port !== undefined ? { port: parsed.port } : {}),
      ...(parsed.user !== undefined ? { user: parsed.user } : {}),
      ...(parsed.password !== undefined ? { password: parsed.password } : {}),
      ...(parsed.database !== undefined ? { database: parsed.database } : {}),
      ...(tls ? { ssl } : {}),
      connectTimeout: parsed.connectTimeoutMs ?? 10_000,
      ...(egress
        ? {
            stream: (opts: { config: { host?: string; port?: number; socketPath?: string } }) => {
              const { host, port, socketPath } = opts.config;
              const socket = new EgressSocket(egress);
              return socketPath ? socket.connect(socketPath) : socket.connect(port ?? 3306, host ?? 'localhost');
            },
          }
        : {}),
    };
  }

  async #withConnection<T>(fn: (c: Connection) => Promise<T>): Promise<T> {
    return withPooledConnection(
      {
        acquire: () => this.#pool.getConnection(),
        release: (conn, broken) => (broken ? conn.destroy() : conn.release()),
        isConnectionError: isMysqlConnectionError,
      },
      fn,
    );
  }

  #creation(role: EngineRole): readonly string[] {
    return role.creationStatements.length > 0 ? role.creationStatements : this.#defaults.creationStatements;
  }

  async verifyConnection(): Promise<void> {
    await this.#withConnection(async (c) => {
      const [rows] = await c.query<mysql.RowDataPacket[]>('SHOW GRANTS FOR CURRENT_USER()');
      const grants = rows.map((r) => String(Object.values(r)[0])).join('\n');
      if (!/GRANT (ALL PRIVILEGES|.*CREATE USER)/i.test(grants)) {
        throw new CustosError('CUSTOS_ERR_ENGINE_UNAVAILABLE', 'The admin user cannot create users.');
      }
    });
  }

  /**
   * MySQL DDL (CREATE USER, GRANT) commits implicitly, so a transaction
   * cannot undo it: the statements run for real with a throwaway name and
   * password, and that user is always dropped afterwards (in `finally`,
   * whether they succeeded or not). The revocation statements run too, so
   * both lists are checked when the role is written.
   */
  async validateRole(role: EngineRole): Promise<void> {
    const name = generateUsername('validate', MAX_NAME);
    const password = generatePassword();
    const expiration = new Date(Date.now() + 3_600_000);
    await this.#withConnection(async (c) => {
      try {
        for (const s of this.#creation(role))
          await c.query(renderStatement(s, { name, password, expiration }, 'mysql'));
        if ((await hostsOf(c, name)).length === 0) throw notCreated();
        await this.#runRevocation(c, role, name);
      } catch (e) {
        if (isMysqlConnectionError(e)) throw e;
        throw invalidStatements(e, [password]);
      } finally {
        await dropUser(c, name).catch(() => undefined);
      }
    });
  }

  async createCredential(
    role: EngineRole,
    options: { expiresAt: Date; usernamePrefix: string },
  ): Promise<IssuedDatabaseCredential> {
    const name = generateUsername(options.usernamePrefix, MAX_NAME);
    const password = generatePassword();
    try {
      await this.#withConnection(async (c) => {
        for (const s of this.#creation(role)) {
          await c.query(renderStatement(s, { name, password, expiration: options.expiresAt }, 'mysql'));
        }
        if ((await hostsOf(c, name)).length === 0) throw notCreated();
      });
    } catch (e) {
      // No transaction to roll back: whatever the statements did before the
      // failure (CREATE USER, some GRANTs) is undone by dropping the user.
      await this.#withConnection((c) => dropUser(c, name)).catch(() => undefined);
      if (e instanceof CustosError) throw e;
      throw engineStatementFailed('Creating the database user failed', e, [password]);
    }
    return { username: name, password, expiresAt: options.expiresAt };
  }

  async renewCredential(username: string, _expiresAt: Date): Promise<void> {
    assertSafeName(username);
    // Nothing to extend in MySQL (no VALID UNTIL): custos's lease holds the expiry.
    await this.#withConnection(async (c) => {
      if ((await hostsOf(c, username)).length === 0) {
        throw new CustosError('CUSTOS_ERR_LEASE_NOT_FOUND', 'The database user no longer exists.');
      }
    });
  }

  async revokeCredential(role: EngineRole, username: string): Promise<void> {
    assertSafeName(username);
    await this.#withConnection(async (c) => {
      try {
        const hosts = await hostsOf(c, username);
        // Lock first so no new session starts, then kill the open ones: a
        // dropped MySQL user's sessions would otherwise live on.
        for (const host of hosts) {
          await c.query('ALTER USER ?@? ACCOUNT LOCK', [username, host]).catch((e: unknown) => {
            if (isMysqlConnectionError(e)) throw e; // servers before MySQL 5.7.6/MariaDB 10.4 lack ACCOUNT LOCK
          });
        }
        await killSessions(c, username);
        if (hosts.length === 0) return; // already gone: revocation is idempotent
        await this.#runRevocation(c, role, username, hosts);
        await dropUser(c, username);
        await killSessions(c, username);
      } catch (e) {
        if (isMysqlConnectionError(e) || e instanceof CustosError) throw e;
        throw engineStatementFailed('Revoking the database user failed', e, []);
      }
    });
  }

  async #runRevocation(c: Connection, role: EngineRole, name: string, hosts?: readonly string[]): Promise<void> {
    if (role.revocationStatements.length > 0) {
      for (const s of role.revocationStatements) await c.query(renderStatement(s, { name }, 'mysql'));
      return;
    }
    // Built-in: revoke on every host the user exists for (the template's '%' may not be one).
    for (const host of hosts ?? (await hostsOf(c, name))) {
      await c.query('REVOKE ALL PRIVILEGES, GRANT OPTION FROM ?@?', [name, host]);
    }
  }

  async setPassword(username: string, password: string): Promise<void> {
    if (!password) throw new CustosError('CUSTOS_ERR_VALIDATION', 'The password is empty.');
    await this.#withConnection(async (c) => {
      // The account custos works as is never a rotation target (MySQL
      // accounts are user@host: refusing the user name covers every host).
      const [me] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS current, USER() AS session');
      const userOf = (account: unknown) => String(account).slice(0, String(account).lastIndexOf('@'));
      if (userOf(me[0]?.current) === username || userOf(me[0]?.session) === username)
        throw new AdminNotRotatableError();
      const hosts = await hostsOf(c, username);
      if (hosts.length === 0) throw new CustosError('CUSTOS_ERR_NOT_FOUND', 'No such database user.');
      try {
        for (const host of hosts) await c.query('ALTER USER ?@? IDENTIFIED BY ?', [username, host, password]);
      } catch (e) {
        if (isMysqlConnectionError(e)) throw e;
        throw engineStatementFailed('Setting the password failed', e, [password]);
      }
    });
  }

  async testCredential(username: string, password: string): Promise<void> {
    let conn: mysql.Connection | undefined;
    try {
      // A fresh connection, never the pool: the point is a new authentication.
      conn = await mysql.createConnection(this.#connectionConfig(credentialUrl(this.#url, username, password)));
      conn.on('error', () => undefined);
      await conn.query('SELECT 1');
    } catch (e) {
      if (isEgressRefusal(e)) throw e;
      // Access-denied codes mean the credential under test was refused, not that the server is down.
      const code = mysqlCode(e) ?? '';
      if (isMysqlConnectionError(e) && !/^ER_(DB)?ACCESS_DENIED/.test(code)) throw engineUnavailable();
      throw loginRefused(e, [password]);
    } finally {
      await conn?.end().catch(() => undefined);
    }
  }

  async rotateRootPassword(): Promise<{ url: string }> {
    const password = generatePassword();
    const next = new URL(this.#url);
    next.password = password;
    const oldPassword = decodeURIComponent(new URL(this.#url).password);
    await this.#withConnection(async (c) => {
      // `ALTER USER CURRENT_USER() IDENTIFIED BY …` is accepted by MariaDB
      // 10.11 but changes nothing (seen in this project's tests): name the
      // account explicitly instead, which both MySQL and MariaDB honour.
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS account');
      const account = String(rows[0]?.account);
      const at = account.lastIndexOf('@');
      const user = account.slice(0, at);
      const host = account.slice(at + 1);
      try {
        await c.query('ALTER USER ?@? IDENTIFIED BY ?', [user, host, password]);
      } catch (e) {
        if (isMysqlConnectionError(e)) throw e;
        throw engineStatementFailed('Rotating the admin password failed', e, [password, oldPassword]);
      }
      if (!(await canLogin(this.#connectionConfig(next.toString())))) {
        // This session is still authenticated: put the old password back.
        await c.query('ALTER USER ?@? IDENTIFIED BY ?', [user, host, oldPassword]);
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

const notCreated = () =>
  new CustosError('CUSTOS_ERR_VALIDATION', 'The creation statements must create a user named {{name}}.');

/** The hosts `name` exists for (`'name'@'%'`, …). */
async function hostsOf(c: Connection, name: string): Promise<string[]> {
  const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT Host FROM mysql.user WHERE User = ?', [name]);
  return rows.map((r) => String(r.Host));
}

/** Drops the user on every host it exists for. */
async function dropUser(c: Connection, name: string): Promise<void> {
  for (const host of await hostsOf(c, name)) await c.query('DROP USER IF EXISTS ?@?', [name, host]);
}

/** Kills every connection of the user (but ours). */
async function killSessions(c: Connection, name: string): Promise<void> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(
    'SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()',
    [name],
  );
  for (const row of rows) {
    await c.query(`KILL CONNECTION ${Number(row.ID)}`).catch((e: unknown) => {
      // ER_NO_SUCH_THREAD: it ended on its own in between.
      if (mysqlCode(e) !== 'ER_NO_SUCH_THREAD') throw e;
    });
  }
}

/** True when a fresh connection with `config` can run a query. */
async function canLogin(config: mysql.ConnectionOptions): Promise<boolean> {
  let conn: mysql.Connection | undefined;
  try {
    conn = await mysql.createConnection(config);
    await conn.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await conn?.end().catch(() => undefined);
  }
}
