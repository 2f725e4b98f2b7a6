import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { EgressPolicy } from '../egress/egress-policy.js';
import { CustosError, isCustosError, NotFoundError, ValidationError } from '../errors/index.js';
import type { AwsStsEngineFactory, AwsStsEnginePort } from '../ports/aws-sts-engine-port.js';
import type { DatabaseEngineFactory, DatabaseEnginePort, EngineRolePort } from '../ports/database-engine-port.js';
import type { Storage } from '../ports/storage.js';
import { AdminNotRotatableError } from './admin-not-rotatable-error.js';
import { validateAwsEngineSettings, validateAwsRoleSettings } from './aws-sts-settings.js';
import { validateTlsCa } from './engine-tls-ca.js';
import type { AwsEngineSettings, EngineRecord, EngineRoleInput, EngineRoleRecord, EngineView } from './engine-types.js';

const ENGINES = 'engine';
const ROLES = 'engine.role';
const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const DEFAULT_TTL_MS = 3_600_000;
const MAX_TTL_MS = 24 * 3_600_000;
/** AWS's bounds for a role session (AssumeRole DurationSeconds 900..43200). */
export const AWS_MIN_SESSION_MS = 900_000;
const AWS_MAX_SESSION_MS = 43_200_000;

export interface EngineServiceDeps {
  storage: Pick<Storage, 'entries' | 'transaction'>;
  cipher: Cipher;
  /** Opens engines; absent when the deployment has no engine support wired in. */
  factory: DatabaseEngineFactory | undefined;
  /** Opens `aws-sts` engines; absent when the deployment has no AWS support wired in. */
  awsFactory?: AwsStsEngineFactory | undefined;
  /** Every engine connection obeys it (default: the strict default policy). */
  egress?: EgressPolicy;
  now?: () => Date;
}

/**
 * A name a rotatable user may have: it becomes a segment of the policy path
 * `sys/engines/<engine>/users/<name>`, so no `/`, no `.`/`..`, nothing
 * invisible.
 */
const ROTATABLE_USER = /^(?!\.{1,2}$)[^/\s\u0000-\u001f\u007f]{1,128}$/;
const MAX_ROTATABLE_USERS = 256;

/** The policy resource a database rotator on `username` of `engine` needs `rotate` on. */
export function engineUserResource(engine: string, username: string): string {
  return `sys/engines/${engine}/users/${username}`;
}

/** The user an engine connects as, from its admin URL (undefined when the URL names none). */
function adminUser(url: string): string | undefined {
  try {
    const name = decodeURIComponent(new URL(url).username);
    return name === '' ? undefined : name;
  } catch {
    return undefined;
  }
}

/** Validates an engine or role name (also a path segment of `issue:<engine>/<role>`). */
export function validateEngineName(name: string, what = 'engine'): string {
  if (!NAME.test(name)) throw new ValidationError(`The ${what} name is 1–63 of a-z, 0-9, _ and -.`);
  // `<engine>/<role>` is a policy resource: an engine named like a reserved
  // root (`kv`, `sys`) would overlap secret or system paths in policies.
  if (what === 'engine' && RESERVED_ENGINE_NAMES.has(name)) {
    throw new ValidationError(`The engine name ${name} is reserved.`);
  }
  return name;
}
const RESERVED_ENGINE_NAMES = new Set(['kv', 'sys', 'auth', 'tasks', 'engines', 'leases']);

/** The engine role as the engine port wants it. */
export function toEngineRole(record: EngineRoleRecord): EngineRolePort {
  return {
    name: record.name,
    creationStatements: record.creation_statements,
    revocationStatements: record.revocation_statements,
    defaultTtlMs: record.default_ttl_ms,
    maxTtlMs: record.max_ttl_ms,
  };
}

/**
 * Configured database engines and their roles. The admin URL of each engine
 * is stored behind the barrier and never returned; open engine clients are
 * cached per node and reopened when the URL changes (root rotation on another
 * node shows up as a different stored URL).
 */
export class EngineService {
  readonly #storage: EngineServiceDeps['storage'];
  readonly #cipher: Cipher;
  readonly #factory: DatabaseEngineFactory | undefined;
  readonly #egress: EgressPolicy;
  readonly #now: () => Date;
  readonly #open = new Map<string, { key: string; engine: DatabaseEnginePort }>();
  readonly #awsFactory: AwsStsEngineFactory | undefined;
  readonly #openAws = new Map<string, { key: string; engine: AwsStsEnginePort }>();

  constructor(deps: EngineServiceDeps) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#factory = deps.factory;
    this.#awsFactory = deps.awsFactory;
    this.#egress = deps.egress ?? new EgressPolicy();
    this.#now = deps.now ?? (() => new Date());
  }

  /**
   * Adds or replaces an engine after checking custos can connect and create
   * users with it. `rotatable_users` (kept from the engine it replaces when
   * absent) lists the static users a database rotator may change.
   */
  async write(
    name: string,
    connection: {
      type: string;
      url?: string;
      rotatable_users?: readonly string[];
      tls_ca?: string;
      aws?: AwsEngineSettings;
    },
  ): Promise<EngineView> {
    validateEngineName(name);
    if (connection.type === 'aws-sts') return this.#writeAws(name, connection.aws);
    if (connection.type !== 'postgres' && connection.type !== 'mysql') {
      throw new ValidationError('type is postgres, mysql or aws-sts.');
    }
    if (!connection.url) throw new ValidationError('A database engine needs its admin url.');
    const type = connection.type;
    const existing = await this.#find(name);
    const rotatable = validateRotatableUsers(
      connection.rotatable_users ?? existing?.rotatable_users ?? [],
      adminUser(connection.url),
    );
    // The connection (URL and CA) is replaced as a whole: no CA given, none kept.
    const tlsCa = connection.tls_ca === undefined ? undefined : validateTlsCa(connection.tls_ca);
    // The factory parses the URL and refuses any query parameter its driver
    // would take as an option (CUSTOS_ERR_ENGINE_URL_REFUSED) — so a `?user=`
    // cannot make the engine connect as someone `adminUser()` did not see.
    const probe = this.#factoryOrThrow()({
      type,
      url: connection.url,
      egress: this.#egress,
      ...(tlsCa ? { tlsCa } : {}),
    });
    try {
      await probe.verifyConnection();
    } finally {
      await probe.close().catch(() => undefined);
    }
    const time = this.#now().toISOString();
    const record: EngineRecord = {
      name,
      type,
      url: connection.url,
      rotatable_users: rotatable,
      ...(tlsCa ? { tls_ca: tlsCa } : {}),
      created_time: existing?.created_time ?? time,
      updated_time: time,
      root_rotated_time: null,
    };
    await this.#storage.entries.put(ENGINES, name, sealJson(this.#cipher, ENGINES, name, record));
    await this.#drop(name);
    return view(record);
  }

  /**
   * Adds or replaces an `aws-sts` engine. No credential is given or stored:
   * the engine calls STS as whatever principal the SDK's default chain finds,
   * and `sts:GetCallerIdentity` is called now so a missing or refused
   * principal is an error at configuration time.
   */
  async #writeAws(name: string, settings: AwsEngineSettings | undefined): Promise<EngineView> {
    const aws = validateAwsEngineSettings(settings);
    // The endpoints obey the egress policy: checked now, and at every call.
    for (const url of [aws.sts_endpoint, aws.iam_endpoint]) if (url) await this.#egress.checkUrl(url);
    const probe = this.#awsFactoryOrThrow()(this.#awsConnection(aws));
    try {
      await probe.verifyConnection();
    } finally {
      await probe.close().catch(() => undefined);
    }
    const existing = await this.#find(name);
    if (existing && existing.type !== 'aws-sts') {
      throw new ValidationError('An engine keeps its type: delete it first to change it.');
    }
    const time = this.#now().toISOString();
    const record: EngineRecord = {
      name,
      type: 'aws-sts',
      url: '',
      aws,
      created_time: existing?.created_time ?? time,
      updated_time: time,
      root_rotated_time: null,
    };
    await this.#storage.entries.put(ENGINES, name, sealJson(this.#cipher, ENGINES, name, record));
    await this.#drop(name);
    return view(record);
  }

  /** The engine's type (`postgres`, `mysql`, `aws-sts`); CUSTOS_ERR_ENGINE_NOT_FOUND if none. */
  async typeOf(name: string): Promise<EngineRecord['type']> {
    return (await this.#get(name)).type;
  }

  /** The open client of an `aws-sts` engine (reopened when its stored settings changed). */
  async openAws(name: string): Promise<AwsStsEnginePort> {
    const record = await this.#get(name);
    if (record.type !== 'aws-sts' || !record.aws) throw new ValidationError(`Engine ${name} is not an aws-sts engine.`);
    const key = JSON.stringify(record.aws);
    const cached = this.#openAws.get(name);
    if (cached && cached.key === key) return cached.engine;
    if (cached) await this.#drop(name);
    const engine = this.#awsFactoryOrThrow()(this.#awsConnection(record.aws));
    this.#openAws.set(name, { key, engine });
    return engine;
  }

  #awsConnection(aws: AwsEngineSettings) {
    return {
      region: aws.region,
      ...(aws.sts_endpoint ? { stsEndpoint: aws.sts_endpoint } : {}),
      ...(aws.iam_endpoint ? { iamEndpoint: aws.iam_endpoint } : {}),
      egress: this.#egress,
    };
  }

  #awsFactoryOrThrow(): AwsStsEngineFactory {
    if (!this.#awsFactory) throw new CustosError('CUSTOS_ERR_ENGINE_UNAVAILABLE', 'No aws-sts support in this server.');
    return this.#awsFactory;
  }

  async read(name: string): Promise<EngineView> {
    return view(await this.#get(name));
  }

  /**
   * Replaces the list of static users a database rotator may change on this
   * engine, without touching its connection. The engine's admin account is
   * refused: it changes only through {@link rotateRoot}.
   */
  async setRotatableUsers(name: string, users: readonly string[]): Promise<EngineView> {
    const record = await this.#database(name);
    const next: EngineRecord = {
      ...record,
      rotatable_users: validateRotatableUsers(users, adminUser(record.url)),
      updated_time: this.#now().toISOString(),
    };
    await this.#storage.entries.put(ENGINES, name, sealJson(this.#cipher, ENGINES, name, next));
    return view(next);
  }

  /**
   * Throws CUSTOS_ERR_USER_NOT_ROTATABLE unless a database rotator may change
   * `username`'s password on `engine`: it is on the engine's list and is not
   * the account custos connects as. Called when a rotator is configured and
   * again each time it runs, since the list can change in between.
   */
  async assertRotatable(engine: string, username: string): Promise<void> {
    const record = await this.#database(engine);
    if (username === adminUser(record.url)) {
      throw new AdminNotRotatableError();
    }
    if (!(record.rotatable_users ?? []).includes(username)) {
      throw new CustosError(
        'CUSTOS_ERR_USER_NOT_ROTATABLE',
        `Add it with: custos engine rotatable-users ${engine} --users …`,
      );
    }
  }

  /**
   * Where an engine's database listens — scheme, host and port of its URL,
   * never the credential in it — so a decoy (a `db-url` honeytoken) can
   * point at a real database host.
   */
  async endpoint(name: string): Promise<{ scheme: 'postgres' | 'mysql'; host: string; port: number }> {
    const record = await this.#database(name);
    const scheme = record.type === 'mysql' ? 'mysql' : 'postgres';
    const url = new URL(record.url);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    return { scheme, host, port: url.port ? Number(url.port) : scheme === 'mysql' ? 3306 : 5432 };
  }

  async list(): Promise<string[]> {
    return this.#storage.entries.list(ENGINES, '');
  }

  /** Removes an engine and its roles (leases already issued keep being revoked by name). */
  async delete(name: string): Promise<void> {
    await this.#get(name);
    await this.#storage.transaction(async ({ entries }) => {
      for (const key of await entries.list(ROLES, `${name}/`)) await entries.delete(ROLES, key);
      await entries.delete(ENGINES, name);
    });
    await this.#drop(name);
  }

  /**
   * Writes a role. Its statements are tried against the database in a
   * transaction that is rolled back, so invalid SQL is refused now rather
   * than when an agent needs a credential.
   */
  async writeRole(engine: string, name: string, input: EngineRoleInput): Promise<EngineRoleRecord> {
    validateEngineName(name, 'role');
    const engineRecord = await this.#get(engine);
    const existing = await this.findRole(engine, name);
    if (engineRecord.type === 'aws-sts') return this.#writeAwsRole(engine, name, input, existing);
    const defaultTtl = input.default_ttl_ms ?? existing?.default_ttl_ms ?? DEFAULT_TTL_MS;
    const maxTtl = input.max_ttl_ms ?? existing?.max_ttl_ms ?? Math.max(defaultTtl, MAX_TTL_MS);
    for (const ttl of [defaultTtl, maxTtl]) {
      if (!Number.isInteger(ttl) || ttl <= 0) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    }
    if (defaultTtl > maxTtl) throw new CustosError('CUSTOS_ERR_INVALID_TTL', 'default_ttl exceeds max_ttl.');
    const creation = input.creation_statements ?? existing?.creation_statements ?? [];
    const time = this.#now().toISOString();
    const role: EngineRoleRecord = {
      engine,
      name,
      // Empty = the engine's built-in statements (a read-only login).
      creation_statements: [...creation],
      revocation_statements: input.revocation_statements ?? existing?.revocation_statements ?? [],
      default_ttl_ms: defaultTtl,
      max_ttl_ms: maxTtl,
      created_time: existing?.created_time ?? time,
      updated_time: time,
    };
    await (await this.open(engine)).validateRole(toEngineRole(role));
    const key = `${engine}/${name}`;
    await this.#storage.entries.put(ROLES, key, sealJson(this.#cipher, ROLES, key, role));
    return role;
  }

  /**
   * An `aws-sts` role: the IAM role to assume and the session policy. TTLs
   * are bounded by what AWS issues: at least 900 s (AWS's minimum session)
   * for the default, at most 43200 s (its maximum) for both.
   */
  async #writeAwsRole(
    engine: string,
    name: string,
    input: EngineRoleInput,
    existing: EngineRoleRecord | undefined,
  ): Promise<EngineRoleRecord> {
    if (input.creation_statements || input.revocation_statements) {
      throw new ValidationError('An aws-sts role has no statements: give role_arn and session_policy.');
    }
    const aws = validateAwsRoleSettings(input.aws ?? existing?.aws);
    const defaultTtl = input.default_ttl_ms ?? existing?.default_ttl_ms ?? DEFAULT_TTL_MS;
    const maxTtl = input.max_ttl_ms ?? existing?.max_ttl_ms ?? DEFAULT_TTL_MS;
    for (const ttl of [defaultTtl, maxTtl]) {
      if (!Number.isInteger(ttl) || ttl < AWS_MIN_SESSION_MS || ttl > AWS_MAX_SESSION_MS) {
        throw new CustosError(
          'CUSTOS_ERR_INVALID_TTL',
          'An aws-sts role’s TTLs are between 15m and 12h (AWS’s bounds).',
        );
      }
    }
    if (defaultTtl > maxTtl) throw new CustosError('CUSTOS_ERR_INVALID_TTL', 'default_ttl exceeds max_ttl.');
    const time = this.#now().toISOString();
    const role: EngineRoleRecord = {
      engine,
      name,
      creation_statements: [],
      revocation_statements: [],
      default_ttl_ms: defaultTtl,
      max_ttl_ms: maxTtl,
      aws,
      created_time: existing?.created_time ?? time,
      updated_time: time,
    };
    const key = `${engine}/${name}`;
    await this.#storage.entries.put(ROLES, key, sealJson(this.#cipher, ROLES, key, role));
    return role;
  }

  async findRole(engine: string, name: string): Promise<EngineRoleRecord | undefined> {
    const key = `${engine}/${name}`;
    const entry = await this.#storage.entries.get(ROLES, key);
    return entry ? openJson<EngineRoleRecord>(this.#cipher, ROLES, key, entry.value) : undefined;
  }

  async readRole(engine: string, name: string): Promise<EngineRoleRecord> {
    const role = await this.findRole(engine, name);
    if (!role) throw new NotFoundError();
    return role;
  }

  async listRoles(engine: string): Promise<string[]> {
    await this.#get(engine);
    return (await this.#storage.entries.list(ROLES, `${engine}/`)).map((k) => k.slice(engine.length + 1));
  }

  async deleteRole(engine: string, name: string): Promise<void> {
    if (!(await this.#storage.entries.delete(ROLES, `${engine}/${name}`))) throw new NotFoundError();
  }

  /**
   * Replaces the admin password custos connects with. The new URL goes
   * straight behind the barrier: no human ever sees it.
   */
  async rotateRoot(name: string): Promise<EngineView> {
    const record = await this.#database(name);
    const engine = await this.open(name);
    const { url } = await engine.rotateRootPassword();
    const time = this.#now().toISOString();
    const next: EngineRecord = { ...record, url, updated_time: time, root_rotated_time: time };
    await this.#storage.entries.put(ENGINES, name, sealJson(this.#cipher, ENGINES, name, next));
    await this.#drop(name);
    return view(next);
  }

  /** The open client of an engine (reopened when its stored connection changed). */
  async open(name: string): Promise<DatabaseEnginePort> {
    const record = await this.#database(name);
    const key = `${record.url}\n${record.tls_ca ?? ''}`;
    const cached = this.#open.get(name);
    if (cached && cached.key === key) return cached.engine;
    if (cached) await this.#drop(name);
    let engine: DatabaseEnginePort;
    try {
      engine = this.#factoryOrThrow()({
        type: record.type === 'mysql' ? 'mysql' : 'postgres',
        url: record.url,
        egress: this.#egress,
        ...(record.tls_ca ? { tlsCa: record.tls_ca } : {}),
      });
    } catch (error) {
      // An engine stored before its URL was checked parameter by parameter
      // is not opened with what is now refused: it stays unusable, saying
      // why, until an operator writes it again.
      if (isCustosError(error) && error.code === 'CUSTOS_ERR_ENGINE_URL_REFUSED') {
        throw new CustosError(
          'CUSTOS_ERR_ENGINE_UNAVAILABLE',
          `The stored connection of engine ${name} is refused: ${error.detail ?? error.message} Write the engine again (custos engine add ${name} …).`,
        );
      }
      throw error;
    }
    this.#open.set(name, { key, engine });
    return engine;
  }

  /** Closes every open engine client (on seal and shutdown). */
  async close(): Promise<void> {
    const names = [...new Set([...this.#open.keys(), ...this.#openAws.keys()])];
    await Promise.all(names.map((n) => this.#drop(n)));
  }

  async #drop(name: string): Promise<void> {
    const cached = this.#open.get(name);
    this.#open.delete(name);
    await cached?.engine.close().catch(() => undefined);
    const aws = this.#openAws.get(name);
    this.#openAws.delete(name);
    await aws?.engine.close().catch(() => undefined);
  }

  #factoryOrThrow(): DatabaseEngineFactory {
    if (!this.#factory) throw new CustosError('CUSTOS_ERR_ENGINE_UNAVAILABLE', 'No engine support in this server.');
    return this.#factory;
  }

  async #find(name: string): Promise<EngineRecord | undefined> {
    if (!NAME.test(name)) return undefined;
    const entry = await this.#storage.entries.get(ENGINES, name);
    return entry ? openJson<EngineRecord>(this.#cipher, ENGINES, name, entry.value) : undefined;
  }

  /** A database engine's record; an `aws-sts` engine has no database, URL or users. */
  async #database(name: string): Promise<EngineRecord> {
    const record = await this.#get(name);
    if (record.type === 'aws-sts') {
      throw new ValidationError(
        `Engine ${name} is an aws-sts engine: it has no database, admin URL or users (custos's AWS principal comes from the SDK default chain).`,
      );
    }
    return record;
  }

  async #get(name: string): Promise<EngineRecord> {
    const record = await this.#find(name);
    if (!record) throw new CustosError('CUSTOS_ERR_ENGINE_NOT_FOUND');
    return record;
  }
}

function view(record: EngineRecord): EngineView {
  const { url: _url, rotatable_users, ...rest } = record;
  return { ...rest, rotatable_users: [...(rotatable_users ?? [])] };
}

function validateRotatableUsers(users: readonly string[], admin: string | undefined): string[] {
  if (!Array.isArray(users) || users.length > MAX_ROTATABLE_USERS) {
    throw new ValidationError(`rotatable_users is a list of at most ${MAX_ROTATABLE_USERS} names.`);
  }
  for (const user of users) {
    if (typeof user !== 'string' || !ROTATABLE_USER.test(user)) {
      throw new ValidationError(
        'A rotatable user name is 1–128 characters, without "/", spaces or control characters.',
      );
    }
    if (user === admin) {
      throw new ValidationError('The engine’s admin account cannot be rotatable; use rotate-root for it.');
    }
  }
  return [...new Set(users)];
}
