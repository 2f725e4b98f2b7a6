import { webcrypto } from 'node:crypto';
import type { TaskSigningKeys } from './task-signing-keys.js';
import {
  MAX_TASK_TOKEN_LENGTH,
  parseTaskTokenClaims,
  TASK_TOKEN_TYP,
  type TaskTokenClaims,
  THUMBPRINT_SHAPE,
} from './task-token-claims.js';
import { TaskTokenInvalidError, type TaskTokenRefusal } from './task-token-error.js';
import { decodeJsonPart, splitCompactJws } from './task-token-jws.js';
import { VerifiedTaskTokenCache } from './task-token-verify-cache.js';

export interface VerifyTaskTokenOptions {
  readonly keys: Pick<TaskSigningKeys, 'keyForHeader' | 'hasKid' | 'reloadForUnknownKid'>;
  /** The `iss` required. */
  readonly issuer: string;
  /** The token's `aud` must contain this (or one of these). */
  readonly audience: string | readonly string[];
  /** Epoch milliseconds; defaults to Date.now(). */
  readonly now?: number;
  /** Allowed clock skew between nodes for exp and nbf. Default 5 s. */
  readonly clockToleranceSec?: number;
  /**
   * The RFC 7638 thumbprint of the key that signed the request's DPoP proof,
   * once the caller has verified that proof. A token with `cnf.jkt` is refused
   * unless this matches it, so a sender-constrained token can never be
   * accepted as a bearer token by forgetting the check.
   */
  readonly dpopJkt?: string;
  /**
   * Skip the DPoP binding check. Only for RFC 7662 introspection, where the
   * token is reported with its `cnf` and the resource server checks the proof.
   */
  readonly ignoreDpopBinding?: boolean;
  /** Remember verified signatures across calls (one cache per node). */
  readonly cache?: VerifiedTaskTokenCache;
}

export const DEFAULT_TASK_TOKEN_CLOCK_TOLERANCE_SEC = 5;

/**
 * Verifies a task token and returns its claims, or throws
 * {@link TaskTokenInvalidError} (an UnauthenticatedError: the client learns
 * nothing more; `auditReason` says why, for the audit log).
 *
 * Strict by construction: the header must be byte-for-byte the header custos
 * writes for a known, unretired key, so `alg` is EdDSA (never `none`, never
 * an HMAC keyed with a public key), `typ` is {@link TASK_TOKEN_TYP} and no
 * other parameter (`crit`, `jku`, `jwk`, …) can appear. Then the Ed25519
 * signature, the claim types, exp/nbf, `iss` and `aud`, and the DPoP
 * binding. A token naming an unknown kid makes the key set reload once
 * (rate-limited) in case another node has just rotated.
 *
 * @example
 * ```ts
 * const claims = await verifyTaskToken(bearer, { keys, issuer, audience: 'custos', cache });
 * audit.task_chain = actChain(claims);
 * ```
 */
export async function verifyTaskToken(token: string, options: VerifyTaskTokenOptions): Promise<TaskTokenClaims> {
  if (typeof token !== 'string') throw new TaskTokenInvalidError('malformed');
  if (token.length > MAX_TASK_TOKEN_LENGTH) throw new TaskTokenInvalidError('oversized');
  const now = options.now ?? Date.now();
  const { keys, cache } = options;
  const digest = cache === undefined ? undefined : VerifiedTaskTokenCache.digest(token);
  if (cache !== undefined && digest !== undefined) {
    const hit = cache.get(digest);
    if (hit !== undefined) {
      if (keys.keyForHeader(token.slice(0, token.indexOf('.')), now) !== undefined)
        return checkClaims(hit.claims, options, now);
      cache.delete(digest); // its key retired: verify afresh, which refuses it
    }
  }
  const parts = splitCompactJws(token);
  if (parts === undefined) throw new TaskTokenInvalidError('malformed');
  let key = keys.keyForHeader(parts.encodedHeader, now);
  if (key === undefined) {
    const kid = refuseHeader(parts.encodedHeader);
    await keys.reloadForUnknownKid();
    key = keys.keyForHeader(parts.encodedHeader, now);
    if (key === undefined) {
      // Still unknown after the reload: either the kid is not ours (or
      // retired), or the kid is ours and the header is spelled differently.
      throw new TaskTokenInvalidError(keys.hasKid(kid, now) ? 'bad_header' : 'unknown_kid');
    }
  }
  const data = Buffer.from(parts.signingInput, 'latin1');
  if (!(await webcrypto.subtle.verify('Ed25519', key.verifyKey, parts.signature, data))) {
    throw new TaskTokenInvalidError('bad_signature');
  }
  const claims = parseTaskTokenClaims(decodeJsonPart(parts.encodedPayload));
  if (claims === undefined || claims.exp <= claims.iat || claims.nbf < claims.iat) {
    throw new TaskTokenInvalidError('bad_claims');
  }
  if (cache !== undefined && digest !== undefined) cache.set(digest, { claims: deepFreeze(claims) });
  return checkClaims(claims, options, now);
}

/**
 * Explains a header that is not one of ours, or returns its kid when it
 * might become one after a reload. Only a header that is exactly what custos
 * writes for that kid can pass after the reload.
 */
function refuseHeader(encodedHeader: string): string {
  const header = decodeJsonPart(encodedHeader);
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new TaskTokenInvalidError('malformed');
  }
  const { alg, typ, kid } = header as Record<string, unknown>;
  if (alg !== 'EdDSA') throw new TaskTokenInvalidError('alg_not_allowed');
  if (typ !== TASK_TOKEN_TYP) throw new TaskTokenInvalidError('typ_mismatch');
  // Our kids are thumbprints: anything else cannot become known, so it
  // causes no reload.
  if (typeof kid !== 'string' || !THUMBPRINT_SHAPE.test(kid)) throw new TaskTokenInvalidError('unknown_kid');
  return kid;
}

/** The checks that depend on the time and the caller, run on every use (cached or not). */
function checkClaims(claims: TaskTokenClaims, options: VerifyTaskTokenOptions, now: number): TaskTokenClaims {
  const tolerance = options.clockToleranceSec ?? DEFAULT_TASK_TOKEN_CLOCK_TOLERANCE_SEC;
  const nowSec = now / 1000;
  // The signature was verified before these checks: the task named is custos's own, fit for the audit event.
  const refuse = (reason: TaskTokenRefusal) =>
    new TaskTokenInvalidError(reason, { task_id: claims.task_id, identity: claims.sub, role: claims.role });
  if (claims.exp <= nowSec - tolerance) throw refuse('expired');
  // iat ≤ nbf was checked when parsing, so this also refuses an iat in the future.
  if (claims.nbf > nowSec + tolerance) throw refuse('not_yet_valid');
  if (claims.iss !== options.issuer) throw refuse('wrong_issuer');
  if (!audienceMatches(claims.aud, options.audience)) throw refuse('wrong_audience');
  if (claims.cnf !== undefined && options.ignoreDpopBinding !== true) {
    if (options.dpopJkt === undefined) throw refuse('dpop_proof_required');
    if (options.dpopJkt !== claims.cnf.jkt) throw refuse('dpop_key_mismatch');
  }
  return claims;
}

function audienceMatches(actual: string | readonly string[], expected: string | readonly string[]): boolean {
  const want = typeof expected === 'string' ? [expected] : expected;
  return typeof actual === 'string' ? want.includes(actual) : actual.some((a) => want.includes(a));
}

/** Cached claims are shared by every hit: nobody may change them. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
