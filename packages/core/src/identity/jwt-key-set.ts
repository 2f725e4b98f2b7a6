import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type FetchImplementation,
  type JWTVerifyGetKey,
  errors as joseErrors,
} from 'jose';
import { egressFetch } from '../egress/egress-fetch.js';
import { EgressPolicy } from '../egress/egress-policy.js';
import type { JwksSource } from './jwt-auth-config.js';

/** Options for fetching a remote JWKS. */
export interface JwksFetchOptions {
  /**
   * The egress policy the JWKS request obeys (default: the strict default —
   * public addresses only; loopback, link-local and private ranges refused).
   * custos's server passes its configured one.
   */
  egress?: EgressPolicy;
  /**
   * Replaces the request entirely, e.g. to trust a private CA such as a
   * Kubernetes cluster's (`https://kubernetes.default.svc/openid/v1/jwks`).
   * It then answers for where it connects: the egress policy is not applied.
   */
  fetch?: FetchImplementation;
}

/** The policy of resolvers given none: refuses every non-public destination. */
const DEFAULT_EGRESS = new EgressPolicy();

/**
 * Thrown (internally) when the key set itself could not be obtained: network
 * failure, timeout, non-200, malformed JWKS. Kept apart from "no key matches"
 * so the audit log can tell an outage at the issuer from a forged `kid`.
 */
export class KeySetUnavailable extends Error {
  constructor() {
    super('JWKS unavailable');
    this.name = 'KeySetUnavailable';
  }
}

/**
 * Builds the jose key resolver for a {@link JwksSource}. Remote sets are
 * cached by jose, refetched when a token names an unknown `kid` (issuer key
 * rotation) but at most once per cooldown, so a flood of tokens with random
 * `kid`s cannot turn custos into a request amplifier against the issuer.
 * Remote sets are fetched through the egress policy (`egressFetch`): the
 * issuer's host is checked and pinned, and a redirect is a failure.
 */
export function createKeyResolver(source: JwksSource, options: JwksFetchOptions = {}): JWTVerifyGetKey {
  const egress = options.egress ?? DEFAULT_EGRESS;
  const fetchImpl: FetchImplementation = options.fetch ?? ((url, init) => egressFetch(egress, url, init));
  const resolve: JWTVerifyGetKey =
    'url' in source
      ? createRemoteJWKSet(new URL(source.url), {
          timeoutDuration: source.timeoutMs ?? 5_000,
          cooldownDuration: source.cooldownMs ?? 30_000,
          cacheMaxAge: source.cacheMaxAgeMs ?? 600_000,
          [customFetch]: fetchImpl,
        })
      : createLocalJWKSet({ keys: source.keys });
  return async (header, token) => {
    try {
      return await resolve(header, token);
    } catch (e) {
      if (
        e instanceof joseErrors.JWKSNoMatchingKey ||
        e instanceof joseErrors.JWKSMultipleMatchingKeys ||
        e instanceof joseErrors.JOSENotSupported
      ) {
        throw e;
      }
      throw new KeySetUnavailable();
    }
  };
}
