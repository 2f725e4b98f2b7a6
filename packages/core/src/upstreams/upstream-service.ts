import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { EgressPolicy } from '../egress/egress-policy.js';
import { isCustosError, ValidationError } from '../errors/index.js';
import { validateTlsCa } from '../leases/engine-tls-ca.js';
import type { Storage } from '../ports/storage.js';
import { validateSecretPath } from '../secrets/secret-path.js';
import type { SecretService } from '../secrets/secret-service.js';
import { validateAllowHosts, validateAllowMethods, validateAllowPaths } from './upstream-allow.js';
import { UpstreamNotFoundError, UpstreamSecretRefError, UpstreamSecretUnavailableError } from './upstream-errors.js';
import { formatInjectRule, parseInjectRules } from './upstream-inject.js';
import type { UpstreamInput, UpstreamRecord, UpstreamView } from './upstream-types.js';
import { validateBaseUrl } from './upstream-url.js';

const UPSTREAMS = 'upstream';
const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const FIELD = /^[A-Za-z0-9_.-]{1,128}$/;
const MAX_CACHED_POLICIES = 256;

/** The policy resource managing an upstream is authorised on (`write`, `read`, `delete`). */
export function upstreamConfigResource(name: string): string {
  return `sys/upstreams/${name}`;
}

/** The policy resource using an upstream is authorised on (`use`): a task scope names it `use:upstream/NAME`. */
export function upstreamUseResource(name: string): string {
  return `upstream/${name}`;
}

/** Validates an upstream name (a path segment of `upstream/NAME` and of `/u/NAME/`). */
export function validateUpstreamName(name: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ValidationError('The upstream name is 1–63 of a-z, 0-9, _ and -.');
  }
  return name;
}

/** Parses `PATH#FIELD`. */
export function parseSecretRef(text: string): { path: string; field: string } {
  const hash = typeof text === 'string' ? text.lastIndexOf('#') : -1;
  if (hash <= 0) throw new UpstreamSecretRefError('Write it as kv/…#field.');
  const path = text.slice(0, hash);
  const field = text.slice(hash + 1);
  try {
    validateSecretPath(path);
  } catch {
    throw new UpstreamSecretRefError('The path is not a valid secret path under kv/.');
  }
  if (!FIELD.test(field)) throw new UpstreamSecretRefError('The field is 1–128 of letters, digits, "_", "." and "-".');
  return { path, field };
}

export interface UpstreamServiceDeps {
  storage: Pick<Storage, 'entries'>;
  cipher: Cipher;
  secrets: Pick<SecretService, 'get'>;
  /** The server's egress policy; each upstream's `allow_hosts` extend it for that upstream's calls only. */
  egress?: EgressPolicy;
  now?: () => Date;
}

/**
 * Upstreams: HTTP APIs custos calls for a task with a credential the task
 * never holds. Each is stored sealed by the barrier, like engines; it holds
 * a *reference* to a secret, never the value, which is read through the
 * barrier at each call (so a rotation takes effect on the next call, and a
 * task tree keeps its pinned version as `secret get` does).
 */
export class UpstreamService {
  readonly #storage: UpstreamServiceDeps['storage'];
  readonly #cipher: Cipher;
  readonly #secrets: UpstreamServiceDeps['secrets'];
  readonly #egress: EgressPolicy;
  readonly #now: () => Date;
  readonly #policies = new Map<string, EgressPolicy>();

  constructor(deps: UpstreamServiceDeps) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#secrets = deps.secrets;
    this.#egress = deps.egress ?? new EgressPolicy();
    this.#now = deps.now ?? (() => new Date());
  }

  /**
   * Adds or replaces an upstream. Everything is validated before anything
   * is written, and the base URL's host is checked against the egress policy
   * this upstream's calls will use, so a destination that would be refused
   * is an error now (CUSTOS_ERR_EGRESS_REFUSED), not on the first call.
   */
  async write(name: string, input: UpstreamInput): Promise<UpstreamView> {
    validateUpstreamName(name);
    const base = validateBaseUrl(input.base_url);
    const secret = parseSecretRef(input.secret);
    const inject = parseInjectRules(input.inject);
    const allowHosts = validateAllowHosts(input.allow_hosts);
    const allowPaths = validateAllowPaths(input.allow_paths);
    const allowMethods = validateAllowMethods(input.allow_methods);
    // Replaces the system's trust store for this upstream only; never a path
    // (the server reads no file for a configurer), and https only.
    const tlsCa = input.tls_ca === undefined ? undefined : validateTlsCa(input.tls_ca);
    if (tlsCa && !base.startsWith('https:')) throw new ValidationError('tls_ca needs an https base URL.');
    await this.#egress.withAllow(allowHosts).checkUrl(base, ['https:', 'http:']);
    const existing = await this.find(name);
    const time = this.#now().toISOString();
    const record: UpstreamRecord = {
      name,
      base_url: base,
      secret_path: secret.path,
      secret_field: secret.field,
      inject,
      allow_hosts: allowHosts,
      allow_paths: allowPaths,
      allow_methods: allowMethods,
      ...(tlsCa ? { tls_ca: tlsCa } : {}),
      created_time: existing?.created_time ?? time,
      updated_time: time,
    };
    await this.#storage.entries.put(UPSTREAMS, name, sealJson(this.#cipher, UPSTREAMS, name, record));
    return view(record);
  }

  async read(name: string): Promise<UpstreamView> {
    return view(await this.get(name));
  }

  async list(): Promise<string[]> {
    return this.#storage.entries.list(UPSTREAMS, '');
  }

  async delete(name: string): Promise<void> {
    await this.get(name);
    await this.#storage.entries.delete(UPSTREAMS, name);
  }

  async find(name: string): Promise<UpstreamRecord | undefined> {
    if (!NAME.test(name)) return undefined;
    const entry = await this.#storage.entries.get(UPSTREAMS, name);
    return entry ? openJson<UpstreamRecord>(this.#cipher, UPSTREAMS, name, entry.value) : undefined;
  }

  async get(name: string): Promise<UpstreamRecord> {
    const record = await this.find(name);
    if (!record) throw new UpstreamNotFoundError();
    return record;
  }

  /**
   * The egress policy of this upstream's calls: the server's, plus this
   * upstream's own `allow_hosts` — never another upstream's.
   */
  egressFor(record: UpstreamRecord): EgressPolicy {
    const key = record.allow_hosts.join('\n');
    let policy = this.#policies.get(key);
    if (!policy) {
      policy = this.#egress.withAllow(record.allow_hosts);
      if (this.#policies.size >= MAX_CACHED_POLICIES) this.#policies.clear();
      this.#policies.set(key, policy);
    }
    return policy;
  }

  /**
   * The value to inject, read through the barrier now. `pinOwner` (the root
   * task of the caller's tree) gets the version its tree first read, as
   * `secret get` from a task does. Refused (CUSTOS_ERR_UPSTREAM_SECRET_UNAVAILABLE,
   * without saying more) when the secret or field is missing or the value
   * has a control character, which no header or query may carry.
   */
  async credential(record: UpstreamRecord, pinOwner: string | undefined): Promise<string> {
    let value: string | undefined;
    try {
      const secret = await this.#secrets.get(
        record.secret_path,
        undefined,
        pinOwner ? { pin: { owner: pinOwner } } : {},
      );
      value = secret.data[record.secret_field];
    } catch (error) {
      // A sealed barrier or a failing store is not "unavailable secret".
      if (isCustosError(error) && /NOT_FOUND|DELETED|DESTROYED/.test(error.code)) {
        throw new UpstreamSecretUnavailableError();
      }
      throw error;
    }
    if (typeof value !== 'string' || value.length === 0 || /[\u0000-\u001f\u007f]/.test(value)) {
      throw new UpstreamSecretUnavailableError();
    }
    return value;
  }
}

function view(record: UpstreamRecord): UpstreamView {
  return {
    name: record.name,
    base_url: record.base_url,
    secret: `${record.secret_path}#${record.secret_field}`,
    inject: record.inject.map(formatInjectRule),
    allow_hosts: [...record.allow_hosts],
    allow_paths: [...record.allow_paths],
    allow_methods: [...record.allow_methods],
    ...(record.tls_ca ? { tls_ca: record.tls_ca } : {}),
    created_time: record.created_time,
    updated_time: record.updated_time,
  };
}
