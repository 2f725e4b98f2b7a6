import { CustosError } from '@custos/core';

/**
 * TLS to the database, named as libpq names it:
 *
 * - `disable`: no TLS;
 * - `require` and `verify-full`: TLS, the server's certificate verified
 *   against the system's CAs (or the engine's own CA) *and* its name. Unlike
 *   libpq, `require` verifies: what `pg` has always done with it, and an
 *   unverified TLS connection would hand the admin login to whoever sits in
 *   the middle;
 * - `verify-ca`: TLS, the certificate verified, its name not (a server
 *   reached by an address its certificate does not list).
 *
 * `prefer` and `allow` are refused (an attacker on the path downgrades them
 * to plain text), and so is `pg`'s `no-verify`.
 */
export type EngineSslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

/** An engine's admin URL, taken apart: only what custos hands the driver. */
export interface EngineUrl {
  /** A host name or IP address (no brackets); for PostgreSQL also a Unix socket directory (`/var/run/postgresql`). */
  readonly host: string;
  readonly port: number | undefined;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly database: string | undefined;
  readonly sslmode: EngineSslMode | undefined;
  /** From `connect_timeout` (seconds, as libpq). */
  readonly connectTimeoutMs: number | undefined;
  /** PostgreSQL only: what `pg_stat_activity` shows for custos's sessions. */
  readonly applicationName: string | undefined;
}

type EngineType = 'postgres' | 'mysql';

const SCHEMES: Record<EngineType, readonly string[]> = {
  postgres: ['postgres:', 'postgresql:'],
  mysql: ['mysql:', 'mariadb:'],
};

/**
 * The query parameters an engine URL may carry, per driver. Everything else
 * is refused, because both drivers turn query parameters into driver
 * options: `mysql2` takes *any* of its options from the URL (`debug=true`
 * prints every packet, generated passwords included, with `console.log`,
 * past the logger and its redaction; `socketPath`, `localAddress`, `flags`,
 * `host`, `user` change where and as whom it connects), and
 * `pg-connection-string` reads `sslcert`/`sslkey`/`sslrootcert` as file
 * paths with `readFileSync` on the main thread (a FIFO blocks the event loop
 * for good, `/dev/zero` fills memory), and takes `host`, `user`, `port`,
 * `options` (server settings) from the query too. So custos parses the URL
 * itself and hands the driver an explicit configuration; the only knobs
 * left are these, each harmless:
 *
 * - `sslmode`: TLS and how it is verified (see {@link EngineSslMode}); a
 *   private CA is the engine's `tls_ca` (PEM, stored behind the barrier),
 *   never a path;
 * - `connect_timeout`: seconds to wait for a connection (1–120; default 10);
 * - `application_name` (PostgreSQL): the name custos's sessions show.
 */
const PARAMETERS: Record<EngineType, readonly string[]> = {
  postgres: ['sslmode', 'connect_timeout', 'application_name'],
  mysql: ['sslmode', 'connect_timeout'],
};
const DRIVER: Record<EngineType, string> = { postgres: 'PostgreSQL', mysql: 'MySQL/MariaDB' };
const SSL_MODES: readonly EngineSslMode[] = ['disable', 'require', 'verify-ca', 'verify-full'];
const APPLICATION_NAME = /^[A-Za-z0-9 _.:-]{1,63}$/;
const MAX_CONNECT_TIMEOUT_S = 120;
// Shown in an error only when it looks like a parameter name: whatever else
// was written there stays out of errors and logs (the URL holds a password).
const PRINTABLE_NAME = /^[A-Za-z0-9_.-]{1,40}$/;

const refused = (detail: string) => new CustosError('CUSTOS_ERR_ENGINE_URL_REFUSED', detail);

/**
 * Parses an engine's admin URL (`postgres://admin:pw@db:5432/app?sslmode=verify-full`,
 * `mysql://admin:pw@db:3306/app`) into the fields custos passes to the
 * driver. Throws CUSTOS_ERR_ENGINE_URL_REFUSED, naming the parameter or
 * part at fault (never echoing the URL, which holds the admin password),
 * for a parameter outside the driver's allow-list, a value outside its
 * range, a repeated parameter, another scheme, a fragment or no host.
 *
 * @example
 * parseEngineUrl('postgres', 'postgres://custos_admin:pw@db.internal:5432/app?sslmode=verify-full');
 * // { host: 'db.internal', port: 5432, user: 'custos_admin', password: 'pw', database: 'app', sslmode: 'verify-full', … }
 */
export function parseEngineUrl(type: EngineType, text: string): EngineUrl {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refused('The engine URL is not a valid URL.');
  }
  const schemes = SCHEMES[type];
  if (!schemes.includes(url.protocol)) {
    throw refused(`A ${type} engine URL begins with ${schemes.map((s) => `${s}//`).join(' or ')}.`);
  }
  if (url.hash) throw refused('The engine URL must not have a #fragment.');
  const host = decodeHost(url.hostname, type);
  const seen = new Set<string>();
  const values: Record<string, string> = {};
  for (const [key, value] of url.searchParams) {
    const name = PRINTABLE_NAME.test(key) ? `"${key}"` : 'a parameter';
    if (!PARAMETERS[type].includes(key)) {
      throw refused(
        `The engine URL parameter ${name} is not accepted: custos passes only ${PARAMETERS[type].join(', ')} to ${DRIVER[type]} (other parameters can make the driver read files, log traffic or connect elsewhere).`,
      );
    }
    if (seen.has(key)) throw refused(`The engine URL parameter ${name} is given twice.`);
    seen.add(key);
    values[key] = value;
  }
  return {
    host,
    port: url.port ? Number(url.port) : undefined,
    user: decodePart(url.username, 'user name'),
    password: decodePart(url.password, 'password'),
    database: decodePart(url.pathname.replace(/^\//, ''), 'database name'),
    sslmode: sslMode(values.sslmode),
    connectTimeoutMs: connectTimeout(values.connect_timeout),
    applicationName: applicationName(values.application_name),
  };
}

function decodeHost(hostname: string, type: EngineType): string {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  let host: string;
  try {
    host = decodeURIComponent(bare);
  } catch {
    throw refused('The engine URL host is not valid.');
  }
  if (host === '') throw refused('The engine URL names no host.');
  // One host: no lists (`h1,h2`), no spaces or control characters.
  if (/[\s,\u0000-\u001f\u007f]/.test(host)) throw refused('The engine URL host is not valid.');
  if (host.includes('/')) {
    // PostgreSQL: a percent-encoded absolute path is a Unix socket directory
    // (the egress policy allows it only with a `unix:` entry).
    if (type !== 'postgres' || !host.startsWith('/')) {
      throw refused('The engine URL host is not valid (a Unix socket is supported for PostgreSQL only).');
    }
  }
  return host;
}

function decodePart(raw: string, what: string): string | undefined {
  if (raw === '') return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    // Which part is named, never its value (it may be the password).
    throw refused(`The engine URL ${what} is not valid percent-encoding.`);
  }
}

function sslMode(value: string | undefined): EngineSslMode | undefined {
  if (value === undefined) return undefined;
  if ((SSL_MODES as readonly string[]).includes(value)) return value as EngineSslMode;
  throw refused(
    `sslmode is one of ${SSL_MODES.join(', ')} (prefer, allow and no-verify are refused: they give up TLS or its verification).`,
  );
}

function connectTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (!/^\d{1,3}$/.test(value) || seconds < 1 || seconds > MAX_CONNECT_TIMEOUT_S) {
    throw refused(`connect_timeout is a number of seconds, 1–${MAX_CONNECT_TIMEOUT_S}.`);
  }
  return seconds * 1_000;
}

function applicationName(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!APPLICATION_NAME.test(value)) {
    throw refused('application_name is 1–63 letters, digits, spaces and _ . : -.');
  }
  return value;
}
