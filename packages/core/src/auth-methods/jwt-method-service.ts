import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { EgressPolicy } from '../egress/egress-policy.js';
import { NotFoundError, UnauthenticatedError, ValidationError } from '../errors/index.js';
import {
  IdentityRejectedError,
  type JwtAuthConfig,
  JwtAuthMethod,
  type JwtRejectReason,
  validateJwtAuthConfig,
  type WorkloadIdentity,
} from '../identity/index.js';
import type { Storage } from '../ports/storage.js';
import { labelGrantRefusal, type Role } from '../tasks/index.js';
import { labelsFromClaims, validateClaimLabels } from './jwt-claim-labels.js';

const METHODS = 'auth.jwt';
const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/**
 * Configured JWT federation methods (Kubernetes service accounts, GitHub
 * Actions OIDC, any OIDC issuer with a JWKS). Configurations are stored
 * through the barrier (an attacker who can write the database must not be
 * able to point a method at their own JWKS); verifiers are kept per process
 * so their JWKS caches survive between logins. JWKS URLs obey the egress
 * policy: checked when a method is written, and at every fetch.
 */
export class JwtMethodService {
  readonly #storage: Pick<Storage, 'entries'>;
  readonly #cipher: Cipher;
  readonly #egress: EgressPolicy;
  readonly #verifiers = new Map<string, { json: string; method: JwtAuthMethod }>();

  constructor(deps: { storage: Pick<Storage, 'entries'>; cipher: Cipher; egress?: EgressPolicy }) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#egress = deps.egress ?? new EgressPolicy();
  }

  async write(config: JwtAuthConfig): Promise<JwtAuthConfig> {
    if (!NAME.test(config.name)) throw new ValidationError('JWT method names use a-z, 0-9, "_", "." and "-".');
    validateJwtAuthConfig(config);
    if (config.claimLabels !== undefined) config = { ...config, claimLabels: validateClaimLabels(config.claimLabels) };
    // A refused JWKS host is an error now, not a failed login later.
    if ('url' in config.jwks) await this.#egress.checkUrl(config.jwks.url);
    await this.#storage.entries.put(METHODS, config.name, sealJson(this.#cipher, METHODS, config.name, config));
    this.#verifiers.delete(config.name);
    return config;
  }

  async read(name: string): Promise<JwtAuthConfig> {
    const entry = NAME.test(name) ? await this.#storage.entries.get(METHODS, name) : undefined;
    if (!entry) throw new NotFoundError();
    return openJson<JwtAuthConfig>(this.#cipher, METHODS, name, entry.value);
  }

  list(): Promise<string[]> {
    return this.#storage.entries.list(METHODS, '', { limit: 1_000 });
  }

  async delete(name: string): Promise<void> {
    if (!(await this.#storage.entries.delete(METHODS, name))) throw new NotFoundError();
    this.#verifiers.delete(name);
  }

  /**
   * Verifies a workload JWT for a role with one method (named, or the only
   * one the role allows): issuer, audience, expiry, algorithm allow-list and
   * the role's bound claims. Every refusal is an UnauthenticatedError.
   * `labels` are the operator labels the method's claim mapping gives, all
   * of them keys the role lets be granted.
   */
  async login(
    role: Role,
    jwt: string,
    methodName: string | undefined,
  ): Promise<WorkloadIdentity & { labels: Record<string, string> }> {
    // A role must name its methods (checked when it is written); one stored
    // before that rule is not open to every method there is.
    const allowed = role.jwt_methods;
    if (allowed.length === 0) throw new IdentityRejectedError<JwtRejectReason>('jwt', 'role_names_no_jwt_method');
    const name = methodName ?? (allowed.length === 1 ? allowed[0] : undefined);
    // No hint about which methods exist: an anonymous caller learns only the code.
    if (!name || !allowed.includes(name)) throw new UnauthenticatedError();
    const config = await this.read(name);
    const json = JSON.stringify(config);
    let cached = this.#verifiers.get(name);
    if (!cached || cached.json !== json) {
      cached = { json, method: new JwtAuthMethod(config, { egress: this.#egress }) };
      this.#verifiers.set(name, cached);
    }
    const identity = await cached.method.verify(jwt, { claims: role.bound_claims, matching: 'glob' });
    const labels = labelsFromClaims(identity.claims, config.claimLabels);
    // The method's writer chose the mapping; the role's writer chooses which
    // keys may reach its tasks. Refused, not dropped: leaving a label out
    // could let the task past a `forbid` written on it.
    if (labelGrantRefusal(role, labels)) {
      throw new IdentityRejectedError<JwtRejectReason>('jwt', 'claim_label_not_grantable');
    }
    return { ...identity, labels };
  }
}
