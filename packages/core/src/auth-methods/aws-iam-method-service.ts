import { createHash } from 'node:crypto';
import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { egressFetch } from '../egress/egress-fetch.js';
import { EgressPolicy } from '../egress/egress-policy.js';
import { CustosError, isCustosError, NotFoundError, UnauthenticatedError, ValidationError } from '../errors/index.js';
import { IdentityRejectedError } from '../identity/index.js';
import type { Storage } from '../ports/storage.js';
import type { Role } from '../tasks/index.js';
import {
  type AwsLoginRejectReason,
  type AwsSignedLoginRequest,
  checkAwsLoginRequest,
  normalizeCallerArn,
} from './aws-signed-request.js';

const METHODS = 'auth.aws';
const SEEN = 'auth.aws.sig';
const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const ROLE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** AWS's global STS endpoint: what a login is forwarded to unless the operator names another. */
export const DEFAULT_AWS_STS_ENDPOINT = 'https://sts.amazonaws.com';
/** STS accepts a signature for 15 minutes; a used one is remembered that long (plus margin). */
const SIGNATURE_LIFETIME_MS = 20 * 60_000;
const MAX_BINDINGS = 64;
const MAX_PATTERNS = 32;

/** Which AWS callers may enter a custos role. At least one of accounts and principal_arns. */
export interface AwsRoleBinding {
  /** The custos role. */
  role: string;
  /** 12-digit account ids the caller must be in. */
  accounts?: string[];
  /**
   * IAM principals (`*` matches any run of characters): users
   * `arn:aws:iam::<acct>:user/<name>`, or roles `arn:aws:iam::<acct>:role/<name>`
   * (an assumed-role session is matched by its role, without path).
   */
  principal_arns?: string[];
  /**
   * Session names of an assumed role (`*` globs). The *caller* chooses its
   * session name unless the IAM role's trust policy pins `sts:RoleSessionName`:
   * bind on it only where the trust policy does.
   */
  session_names?: string[];
}

/** An AWS IAM auth method (`custos auth aws add`). */
export interface AwsAuthConfig {
  name: string;
  /** Must be signed into every login request (`X-Custos-Server-ID`): a request for another server is refused. */
  server_id: string;
  /** Where custos forwards the signed request; default {@link DEFAULT_AWS_STS_ENDPOINT}. Never from the request. */
  sts_endpoint?: string;
  bindings: AwsRoleBinding[];
}

/** Who a login proved to be, as STS answered. */
export interface AwsLoginIdentity {
  arn: string;
  account: string;
  user_id: string;
  principal_arn: string;
  session_name: string | null;
}

const reject = (reason: AwsLoginRejectReason) => new IdentityRejectedError<AwsLoginRejectReason>('aws', reason);

const globMatch = (value: string, pattern: string): boolean =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  ).test(value);

/**
 * AWS IAM logins, as Vault's aws auth method does it: the workload signs an
 * `sts:GetCallerIdentity` request with its own AWS credentials (instance
 * role, task role, IRSA…) and hands custos the signed request, not the
 * credentials. custos forwards it to STS — the configured endpoint only —
 * and STS's answer says who signed it. Configurations are sealed like JWT
 * methods (whoever can write the database must not be able to point logins
 * at an STS of their own).
 */
export class AwsIamMethodService {
  readonly #storage: Pick<Storage, 'entries'>;
  readonly #cipher: Cipher;
  readonly #egress: EgressPolicy;
  readonly #now: () => number;

  constructor(deps: { storage: Pick<Storage, 'entries'>; cipher: Cipher; egress?: EgressPolicy; now?: () => number }) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#egress = deps.egress ?? new EgressPolicy();
    this.#now = deps.now ?? Date.now;
  }

  async write(config: AwsAuthConfig): Promise<AwsAuthConfig> {
    if (!NAME.test(config.name)) throw new ValidationError('AWS method names use a-z, 0-9, "_", "." and "-".');
    if (!/^[\x21-\x7e]{1,128}$/.test(config.server_id)) {
      throw new ValidationError('server_id is 1–128 printable characters without spaces.');
    }
    if (config.sts_endpoint !== undefined) {
      const url = await this.#egress.checkUrl(config.sts_endpoint);
      if (url.pathname !== '/' || url.search) throw new ValidationError('sts_endpoint is an origin, with no path.');
    }
    if (!Array.isArray(config.bindings) || config.bindings.length === 0 || config.bindings.length > MAX_BINDINGS) {
      throw new ValidationError(`bindings: 1 to ${MAX_BINDINGS}.`);
    }
    for (const b of config.bindings) {
      if (!ROLE_NAME.test(b.role)) throw new ValidationError('A binding names a custos role.');
      // A binding with neither would let any AWS account in the world enter the role.
      if (!b.accounts?.length && !b.principal_arns?.length) {
        throw new ValidationError('A binding names accounts or principal_arns (or both).');
      }
      for (const list of [b.accounts, b.principal_arns, b.session_names]) {
        if (list && (list.length > MAX_PATTERNS || list.some((v) => typeof v !== 'string' || v.length > 512))) {
          throw new ValidationError(`At most ${MAX_PATTERNS} values per list, 512 characters each.`);
        }
      }
      if (b.accounts?.some((a) => !/^\d{12}$/.test(a))) throw new ValidationError('An account is 12 digits.');
      if (b.principal_arns?.some((a) => !a.startsWith('arn:'))) throw new ValidationError('principal_arns are ARNs.');
    }
    await this.#storage.entries.put(METHODS, config.name, sealJson(this.#cipher, METHODS, config.name, config));
    return config;
  }

  async read(name: string): Promise<AwsAuthConfig> {
    const entry = NAME.test(name) ? await this.#storage.entries.get(METHODS, name) : undefined;
    if (!entry) throw new NotFoundError();
    return openJson<AwsAuthConfig>(this.#cipher, METHODS, name, entry.value);
  }

  list(): Promise<string[]> {
    return this.#storage.entries.list(METHODS, '', { limit: 1_000 });
  }

  async delete(name: string): Promise<void> {
    if (!(await this.#storage.entries.delete(METHODS, name))) throw new NotFoundError();
  }

  /**
   * Verifies a signed GetCallerIdentity request for `role` with one method
   * (named, or the only one there is). Every refusal is an
   * UnauthenticatedError whose reason goes to the audit only.
   */
  async login(role: Role, request: AwsSignedLoginRequest, methodName: string | undefined): Promise<AwsLoginIdentity> {
    const name = methodName ?? (await this.#onlyMethod());
    if (!name) throw new UnauthenticatedError();
    const config = await this.read(name).catch(() => {
      throw new UnauthenticatedError();
    });
    const bindings = config.bindings.filter((b) => b.role === role.name);
    if (bindings.length === 0) throw reject('not_bound');
    const endpoint = new URL(config.sts_endpoint ?? DEFAULT_AWS_STS_ENDPOINT);
    const now = this.#now();
    const checked = checkAwsLoginRequest(request, { serverId: config.server_id, host: endpoint.host, now });
    // Single use: a signature STS would still accept for minutes is not a
    // bearer token here. Remembered before STS is asked, so two racing
    // presentations of one signature cannot both get through.
    const key = createHash('sha256').update(checked.signature).digest('hex');
    const fresh = await this.#storage.entries.putIfAbsent(SEEN, key, new Uint8Array(0), {
      expiresAt: checked.signedAt + SIGNATURE_LIFETIME_MS,
    });
    if (!fresh) throw reject('replayed');
    await this.#reapSeen();
    let response: Response;
    try {
      response = await egressFetch(this.#egress, endpoint, {
        method: 'POST',
        headers: checked.headers,
        body: request.body,
      });
    } catch (error) {
      if (isCustosError(error) && error.code === 'CUSTOS_ERR_EGRESS_REFUSED') throw error;
      throw new CustosError('CUSTOS_ERR_AWS_UNAVAILABLE', 'sts:GetCallerIdentity for a login: no answer.');
    }
    const text = await response.text();
    if (response.status >= 500 || /<Code>Throttling<\/Code>/.test(text)) {
      throw new CustosError('CUSTOS_ERR_AWS_UNAVAILABLE', `sts:GetCallerIdentity for a login: ${response.status}.`);
    }
    if (response.status !== 200) throw reject('sts_refused');
    const field = (tag: string) => new RegExp(`<${tag}>([^<]{1,2048})</${tag}>`).exec(text)?.[1];
    const arn = field('Arn');
    const account = field('Account');
    const userId = field('UserId');
    if (!arn || !account || !userId || !/^\d{12}$/.test(account)) throw reject('sts_refused');
    const { principalArn, sessionName } = normalizeCallerArn(arn);
    const bound = bindings.some(
      (b) =>
        (!b.accounts?.length || b.accounts.includes(account)) &&
        (!b.principal_arns?.length || b.principal_arns.some((p) => globMatch(principalArn, p))) &&
        (!b.session_names?.length || (sessionName !== null && b.session_names.some((p) => globMatch(sessionName, p)))),
    );
    if (!bound) throw reject('not_bound');
    return { arn, account, user_id: userId, principal_arn: principalArn, session_name: sessionName };
  }

  async #onlyMethod(): Promise<string | undefined> {
    const names = await this.list();
    return names.length === 1 ? names[0] : undefined;
  }

  async #reapSeen(): Promise<void> {
    const expired = await this.#storage.entries.listExpired(SEEN, this.#now(), 100);
    for (const id of expired) await this.#storage.entries.delete(SEEN, id);
  }
}
