import { type JWTPayload, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from 'jose';
import { IdentityRejectedError } from './identity-rejected-error.js';
import { DEFAULT_JWT_ALGORITHMS, type JwtAuthConfig, validateJwtAuthConfig } from './jwt-auth-config.js';
import { type JwtBinding, matchesBinding } from './jwt-bound-claims.js';
import { createKeyResolver, type JwksFetchOptions } from './jwt-key-set.js';
import { type JwtRejectReason, jwtRejectReason } from './jwt-reject-reason.js';

/** A workload identity proven by a federated JWT. */
export interface WorkloadIdentity {
  /** The auth method that accepted the token. */
  method: string;
  /** The token's `sub`, e.g. `system:serviceaccount:agents:enricher`. */
  subject: string;
  /** The verified claims (for policy context and audit; never the token itself). */
  claims: JWTPayload;
  /** When the presented token expires (ms since epoch). */
  expiresAtMs: number;
}

/** Options for {@link JwtAuthMethod}. */
export interface JwtAuthMethodOptions extends JwksFetchOptions {
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * Identity tokens are about 1 KiB (Kubernetes, GitHub Actions). Refusing
 * anything far larger before parsing bounds the work an unauthenticated caller
 * can make custos do.
 */
export const MAX_JWT_LENGTH = 16 * 1024;
/**
 * Longest `sub` a login accepts, in UTF-8 bytes. The subject becomes the
 * task's identity (`jwt:<iss>#<sub>`), carried in every task token of its
 * tree (and again per delegation level in `act`), so an unbounded one makes
 * tokens too large to present (the token exchange takes 8 KiB). OpenID
 * Connect caps `sub` at 255 ASCII characters; a Kubernetes service account's
 * is at most 339 (`system:serviceaccount:` + namespace + name). 512 holds both.
 */
export const MAX_JWT_SUBJECT_BYTES = 512;
/** How many keys are tried for a token without `kid` when several keys could match. */
const MAX_KEY_CANDIDATES = 8;

/**
 * A configured JWT federation auth method: trusts one issuer's tokens for one
 * audience. Holds the issuer's key set, so create one per configuration and
 * reuse it (a remote JWKS is fetched once and cached, not per login).
 *
 * Every check and why:
 * - signature with a key from the issuer's JWKS, `alg` from an asymmetric
 *   allow-list checked *before* any key is chosen: refuses `alg: none` and the
 *   HS256-with-the-public-key confusion attack;
 * - `iss` exact and `aud` must name us: a token minted for another relying
 *   party (another service reading the same cluster's tokens) is not a login
 *   token for custos;
 * - `exp`, `iat`, `sub` required, `sub` at most {@link MAX_JWT_SUBJECT_BYTES};
 *   `exp`/`nbf` with a small clock tolerance;
 *   `iat` not in the future; optional `maxTokenAgeSec` caps long-lived tokens;
 * - the role's bindings (subject and claims), so a valid token of the right
 *   issuer still cannot log in as a role it is not bound to.
 *
 * Any failure throws {@link IdentityRejectedError} (client sees only
 * CUSTOS_ERR_UNAUTHENTICATED) with a `JwtRejectReason` for the audit log.
 *
 * @example
 * ```ts
 * const k8s = new JwtAuthMethod({
 *   name: 'k8s-prod',
 *   issuer: 'https://kubernetes.default.svc.cluster.local',
 *   audience: 'custos',
 *   jwks: { keys: JSON.parse(await readFile('jwks.json', 'utf8')).keys },
 * });
 * const who = await k8s.verify(token, {
 *   subject: 'system:serviceaccount:agents:enricher',
 *   claims: { '/kubernetes.io/namespace': 'agents' },
 * });
 * ```
 */
export class JwtAuthMethod {
  readonly config: Readonly<JwtAuthConfig>;
  readonly #keys: JWTVerifyGetKey;
  readonly #now: () => number;

  constructor(config: JwtAuthConfig, options: JwtAuthMethodOptions = {}) {
    validateJwtAuthConfig(config);
    this.config = structuredClone(config);
    this.#keys = createKeyResolver(this.config.jwks, options);
    this.#now = options.now ?? Date.now;
  }

  /** The auth method's name. */
  get name(): string {
    return this.config.name;
  }

  /**
   * Verifies `token` and the role's `binding`; resolves to the workload
   * identity or throws {@link IdentityRejectedError}.
   */
  async verify(token: string, binding: JwtBinding = {}): Promise<WorkloadIdentity> {
    if (typeof token !== 'string') throw reject('malformed');
    if (token.length > MAX_JWT_LENGTH) throw reject('too_large');
    const config = this.config;
    const nowMs = this.#now();
    const tolerance = config.clockToleranceSec ?? 30;
    const options = {
      issuer: config.issuer,
      audience: config.audience,
      algorithms: [...(config.algorithms ?? DEFAULT_JWT_ALGORITHMS)],
      clockTolerance: tolerance,
      currentDate: new Date(nowMs),
      // Without `exp` a stolen token is valid forever; without `iat` the age
      // cannot be bounded; without `sub` there is no identity to name.
      requiredClaims: ['exp', 'iat', 'sub'],
      ...(config.maxTokenAgeSec === undefined ? {} : { maxTokenAge: config.maxTokenAgeSec }),
    };
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, this.#keys, options)).payload;
    } catch (e) {
      if (!(e instanceof joseErrors.JWKSMultipleMatchingKeys)) throw reject(jwtRejectReason(e));
      // No `kid` and several keys of the right type (typical of a static JWKS
      // file during rotation): try each, as jose recommends, but only a few,
      // so a crafted token cannot make us run many signature checks.
      payload = await this.#verifyWithCandidates(token, e, options);
    }
    // jose checks `iat` against the clock only when maxTokenAge is set. A
    // token claiming to be issued in the future points at a broken or
    // compromised issuer clock; refuse it rather than trust its window.
    if (typeof payload.iat !== 'number' || payload.iat * 1000 > nowMs + tolerance * 1000) {
      throw reject('issued_in_future');
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw reject('missing_claim');
    if (Buffer.byteLength(payload.sub, 'utf8') > MAX_JWT_SUBJECT_BYTES) throw reject('subject_too_long');
    if (
      binding.subject !== undefined &&
      !matchesBinding(payload, { subject: binding.subject, matching: binding.matching })
    ) {
      throw reject('subject_mismatch');
    }
    if (!matchesBinding(payload, { claims: binding.claims, matching: binding.matching })) {
      throw reject('bound_claim_mismatch');
    }
    return {
      method: config.name,
      subject: payload.sub,
      claims: payload,
      expiresAtMs: (payload.exp as number) * 1000,
    };
  }

  async #verifyWithCandidates(
    token: string,
    error: joseErrors.JWKSMultipleMatchingKeys,
    options: Parameters<typeof jwtVerify>[2],
  ): Promise<JWTPayload> {
    let tried = 0;
    let last: unknown = error;
    for await (const key of error) {
      if (++tried > MAX_KEY_CANDIDATES) break;
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (e) {
        last = e;
        // Only a signature mismatch means "wrong candidate"; an expired or
        // mis-addressed token fails the same way under every key.
        if (!(e instanceof joseErrors.JWSSignatureVerificationFailed)) break;
      }
    }
    throw reject(last instanceof joseErrors.JWKSMultipleMatchingKeys ? 'ambiguous_key' : jwtRejectReason(last));
  }
}

function reject(reason: JwtRejectReason): IdentityRejectedError<JwtRejectReason> {
  return new IdentityRejectedError('jwt', reason);
}

const METHOD_CACHE_LIMIT = 64;
/** Per egress policy (a method fetches through the policy it was made with), then per configuration. */
const methodCaches = new WeakMap<object, Map<string, JwtAuthMethod>>();
const NO_OPTIONS = {};

/**
 * One-call form of {@link JwtAuthMethod.verify}. Methods are cached by their
 * configuration (at most 64), so a remote JWKS is not refetched on every call
 * while an unchanged configuration is passed in again; a changed
 * configuration gets a fresh method.
 *
 * @example
 * ```ts
 * const { subject, claims } = await verifyWorkloadJwt(config, token, {
 *   claims: { repository: 'acme/payments', ref: 'refs/heads/main' },
 * });
 * ```
 */
export function verifyWorkloadJwt(
  config: JwtAuthConfig,
  token: string,
  binding: JwtBinding = {},
  options: Pick<JwtAuthMethodOptions, 'egress'> = {},
): Promise<WorkloadIdentity> {
  const key = JSON.stringify(config);
  const owner = options.egress ?? NO_OPTIONS;
  let methodCache = methodCaches.get(owner);
  if (!methodCache) {
    methodCache = new Map();
    methodCaches.set(owner, methodCache);
  }
  let method = methodCache.get(key);
  if (method) {
    methodCache.delete(key); // re-insert: Map order doubles as LRU order
  } else {
    method = new JwtAuthMethod(config, options);
    if (methodCache.size >= METHOD_CACHE_LIMIT) methodCache.delete(methodCache.keys().next().value as string);
  }
  methodCache.set(key, method);
  return method.verify(token, binding);
}
