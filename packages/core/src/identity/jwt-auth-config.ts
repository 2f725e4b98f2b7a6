import type { JWK } from 'jose';
import { isLoopbackHost } from '../egress/loopback-host.js';
import { ValidationError } from '../errors/index.js';

/**
 * Signature algorithms a federated issuer may use. Only asymmetric ones: a
 * shared-secret (HS*) algorithm would let anyone holding the "public" key
 * material mint tokens, and `none` is no signature at all.
 */
export const ASYMMETRIC_JWS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** One of {@link ASYMMETRIC_JWS_ALGORITHMS}. */
export type AsymmetricJwsAlgorithm = (typeof ASYMMETRIC_JWS_ALGORITHMS)[number];

/** Default allow-list: what Kubernetes, GitHub Actions and common OIDC issuers use. */
export const DEFAULT_JWT_ALGORITHMS: readonly AsymmetricJwsAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];

/** Where the issuer's public keys come from. */
export type JwksSource =
  | {
      /** The issuer's JWKS endpoint (`https://…`; `http://` only on loopback). */
      url: string;
      /** Abort a JWKS fetch after this long (default 5000 ms). */
      timeoutMs?: number;
      /** Minimum time between refetches triggered by an unknown `kid` (default 30000 ms). */
      cooldownMs?: number;
      /** Refetch after this long even if every `kid` is known (default 600000 ms). */
      cacheMaxAgeMs?: number;
    }
  | {
      /** A static key set, e.g. read from `--jwks-file`. Public keys only. */
      keys: JWK[];
    };

/** An operator-configured JWT federation auth method (`custos auth jwt add`). */
export interface JwtAuthConfig {
  /** The auth method's name, e.g. `k8s-prod` or `github`. */
  name: string;
  /** Exact expected `iss`. */
  issuer: string;
  /** Expected `aud`; the token must name at least one of these. */
  audience: string | string[];
  jwks: JwksSource;
  /** Allow-list of signature algorithms; default {@link DEFAULT_JWT_ALGORITHMS}. */
  algorithms?: AsymmetricJwsAlgorithm[];
  /** Leeway for `exp`/`nbf`/`iat` between issuer and custos clocks; default 30 s, at most 300 s. */
  clockToleranceSec?: number;
  /** Refuse tokens whose `iat` is older than this, whatever their `exp`. */
  maxTokenAgeSec?: number;
  /**
   * Claims that become operator labels of the task a login starts: claim
   * name (or `/`-JSON Pointer) → label key, e.g. `{ "/kubernetes.io/namespace":
   * "namespace" }`. The issuer vouches for the value, the operator for the
   * mapping; the agent chooses neither. Checked when the method is written
   * (see auth-methods/jwt-claim-labels.ts).
   */
  claimLabels?: Record<string, string>;
}

const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const MAX_CLOCK_TOLERANCE_SEC = 300;
// Members that only private or symmetric JWKs carry.
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const;

/**
 * Checks a {@link JwtAuthConfig} once, when the operator writes it, so that a
 * dangerous configuration is refused up front rather than silently accepted:
 * symmetric or `none` algorithms, private or symmetric keys in a JWKS file,
 * and JWKS over plain HTTP to anything but loopback (a network attacker could
 * substitute their own keys). Throws {@link ValidationError}.
 *
 * @example
 * ```ts
 * validateJwtAuthConfig({
 *   name: 'github',
 *   issuer: 'https://token.actions.githubusercontent.com',
 *   audience: 'custos',
 *   jwks: { url: 'https://token.actions.githubusercontent.com/.well-known/jwks' },
 * });
 * ```
 */
export function validateJwtAuthConfig(config: JwtAuthConfig): void {
  if (!NAME.test(config.name)) throw new ValidationError('Auth method names use a-z, 0-9, "_", "." and "-".');
  if (typeof config.issuer !== 'string' || config.issuer.length === 0) {
    throw new ValidationError('An issuer is required.');
  }
  const audiences = typeof config.audience === 'string' ? [config.audience] : config.audience;
  // An empty audience list would make jose skip the audience check: a token
  // minted for any other relying party would then be accepted here.
  if (!Array.isArray(audiences) || audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || !a)) {
    throw new ValidationError('At least one non-empty audience is required.');
  }
  const algorithms = config.algorithms ?? DEFAULT_JWT_ALGORITHMS;
  if (algorithms.length === 0) throw new ValidationError('At least one algorithm is required.');
  for (const alg of algorithms) {
    if (!(ASYMMETRIC_JWS_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new ValidationError('Only asymmetric signature algorithms are allowed.');
    }
  }
  const tolerance = config.clockToleranceSec;
  if (
    tolerance !== undefined &&
    !(Number.isFinite(tolerance) && tolerance >= 0 && tolerance <= MAX_CLOCK_TOLERANCE_SEC)
  ) {
    throw new ValidationError(`clockToleranceSec must be between 0 and ${MAX_CLOCK_TOLERANCE_SEC}.`);
  }
  const maxAge = config.maxTokenAgeSec;
  if (maxAge !== undefined && !(Number.isFinite(maxAge) && maxAge > 0)) {
    throw new ValidationError('maxTokenAgeSec must be positive.');
  }
  if ('url' in config.jwks) {
    let url: URL;
    try {
      url = new URL(config.jwks.url);
    } catch {
      throw new ValidationError('The JWKS URL is not a valid URL.');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      throw new ValidationError('The JWKS URL must use https (http is allowed only on loopback).');
    }
    if (url.username || url.password) throw new ValidationError('The JWKS URL must not carry credentials.');
  } else {
    const keys = config.jwks.keys;
    if (!Array.isArray(keys) || keys.length === 0) throw new ValidationError('The key set has no keys.');
    for (const jwk of keys) {
      if (typeof jwk !== 'object' || jwk === null || typeof jwk.kty !== 'string') {
        throw new ValidationError('The key set holds a malformed key.');
      }
      // A private key in a verification key set means the operator pasted the
      // wrong file: refuse rather than store signing material custos must not
      // hold. Symmetric ("oct") keys would make HS* verification possible.
      if (jwk.kty === 'oct' || PRIVATE_JWK_MEMBERS.some((m) => m in jwk)) {
        throw new ValidationError('The key set must hold public keys only.');
      }
    }
  }
}
