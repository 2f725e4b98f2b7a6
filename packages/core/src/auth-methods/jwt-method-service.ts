import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { EgressPolicy } from '../egress/egress-policy.js';
import { NotFoundError, UnauthenticatedError, ValidationError } from '../errors/index.js';
import { type JwtAuthConfig, JwtAuthMethod, validateJwtAuthConfig, type WorkloadIdentity } from '../identity/index.js';
import type { Storage } from '../ports/storage.js';
import type { Role } from '../tasks/index.js';
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
   * `labels` are the operator labels the method's claim mapping gives.
   */
  async login(
    role: Role,
    jwt: string,
    methodName: string | undefined,
  ): Promise<WorkloadIdentity & { labels: Record<string, string> }> {
    const allowed = role.jwt_methods.length > 0 ? role.jwt_methods : await this.list();
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
    return { ...identity, labels: labelsFromClaims(identity.claims, config.claimLabels) };
  }
}
