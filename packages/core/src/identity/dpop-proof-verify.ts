import { createHash, timingSafeEqual } from 'node:crypto';
import { decodeProtectedHeader, EmbeddedJWK, type JWK, type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import { normalizeHtu } from './dpop-htu.js';
import type { DpopReplayCache } from './dpop-replay-cache.js';
import { IdentityRejectedError } from './identity-rejected-error.js';
import { jwkThumbprint } from './jwk-thumbprint.js';

/** Why a DPoP proof was refused; for the audit log only. */
export type DpopRejectReason =
  | 'malformed'
  | 'too_large'
  | 'wrong_type'
  | 'algorithm_not_allowed'
  | 'bad_key'
  | 'bad_signature'
  | 'missing_claim'
  | 'htm_mismatch'
  | 'htu_mismatch'
  | 'too_old'
  | 'issued_in_future'
  | 'nonce_mismatch'
  | 'ath_mismatch'
  | 'jkt_mismatch'
  | 'replayed'
  | 'replay_unavailable';

/** Asymmetric algorithms accepted for DPoP proofs by default. */
export const DEFAULT_DPOP_ALGORITHMS: readonly string[] = ['ES256', 'ES384', 'EdDSA', 'Ed25519', 'PS256', 'RS256'];

/** What the server knows about the request a proof arrived with. */
export interface VerifyDpopProofOptions {
  /** The request method, as received (`'POST'`). */
  method: string;
  /**
   * The request URL as the *client* addressed it: build it from the server's
   * configured external base URL, never from the request's Host header, or a
   * proof made for another host could be replayed here with a forged Host.
   */
  url: string;
  /** The access token sent with the proof; requires `ath` to be its hash. */
  accessToken?: string;
  /** Or the precomputed `ath` (base64url SHA-256 of the access token). */
  accessTokenHash?: string;
  /** The access token's `cnf.jkt`: the proof must be signed by that key. */
  expectedJkt?: string;
  /** A server-provided nonce (RFC 9449 §8) the proof must carry. */
  nonce?: string;
  /** Oldest acceptable `iat`, in seconds before now; default 60. */
  maxAgeSec?: number;
  /** Allowed clock lead of the client (`iat` in the future), default 5 s. */
  clockToleranceSec?: number;
  /** Allow-list of signature algorithms; default {@link DEFAULT_DPOP_ALGORITHMS}. */
  algorithms?: readonly string[];
  /** Single-use enforcement for `jti`. */
  replay: DpopReplayCache;
  /** Clock, for tests (ms since epoch). */
  now?: number;
}

/** A verified DPoP proof. */
export interface VerifiedDpopProof {
  /** RFC 7638 thumbprint of the proof key: bind new tokens to it (`cnf.jkt`). */
  jkt: string;
  jti: string;
  iat: number;
  /** The proof's public key, public members only. */
  publicJwk: JWK;
}

/** Proofs are a few hundred bytes (RSA-4096 keys about 1.5 KiB). */
export const MAX_DPOP_PROOF_LENGTH = 8 * 1024;
const MAX_JTI_LENGTH = 256;
const PUBLIC_MEMBERS: Record<string, readonly string[]> = {
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
  RSA: ['kty', 'n', 'e'],
};
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];

/**
 * Verifies a DPoP proof JWT (RFC 9449 §4.3) for one request. Checks, in an
 * order that does the cheap and unauthenticated checks first and touches the
 * replay cache last (so that unsigned garbage or a proof bound to someone
 * else's token cannot fill it or burn a legitimate `jti`):
 *
 * 1. `typ` is `dpop+jwt` (a proof is not an identity token, and vice versa);
 * 2. `alg` is on an asymmetric allow-list (never `none` or HS*);
 * 3. `jwk` is a public EC/OKP/RSA key (a private key there means a broken
 *    client; refusing keeps secrets out of our audit trail);
 * 4. the signature verifies under that embedded key;
 * 5. `htm` and `htu` match this request, so a proof for one endpoint cannot
 *    be used on another;
 * 6. `iat` is recent (a captured proof is worthless after `maxAgeSec`);
 * 7. `nonce`, `ath` (proof made for this very access token) and the key
 *    thumbprint against `cnf.jkt` (proof made by the token's holder);
 * 8. `jti` not seen before (a captured proof is worthless a second time).
 *
 * Throws {@link IdentityRejectedError} with a `DpopRejectReason`.
 *
 * @example
 * ```ts
 * const { jkt } = await verifyDpopProof(req.headers.dpop, {
 *   method: req.method,
 *   url: new URL(req.url, 'https://custos.example').href,
 *   accessToken,
 *   expectedJkt: claims.cnf.jkt,
 *   replay,
 * });
 * ```
 */
export async function verifyDpopProof(proof: string, options: VerifyDpopProofOptions): Promise<VerifiedDpopProof> {
  if (typeof proof !== 'string') throw reject('malformed');
  if (proof.length > MAX_DPOP_PROOF_LENGTH) throw reject('too_large');
  const algorithms = [...(options.algorithms ?? DEFAULT_DPOP_ALGORITHMS)];
  const tolerance = options.clockToleranceSec ?? 5;
  const maxAge = options.maxAgeSec ?? 60;
  const nowSec = (options.now ?? Date.now()) / 1000;

  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw reject('malformed');
  }
  // Exact, as the RFC writes it: no "application/" prefix or case variants.
  if (header.typ !== 'dpop+jwt') throw reject('wrong_type');
  if (typeof header.alg !== 'string' || !algorithms.includes(header.alg) || header.alg.startsWith('HS')) {
    throw reject('algorithm_not_allowed');
  }
  const jwk = header.jwk;
  const members = jwk && typeof jwk === 'object' && typeof jwk.kty === 'string' ? PUBLIC_MEMBERS[jwk.kty] : undefined;
  if (!jwk || !members || PRIVATE_MEMBERS.some((m) => m in jwk)) throw reject('bad_key');

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
      algorithms,
      typ: 'dpop+jwt',
      clockTolerance: tolerance,
      currentDate: new Date(nowSec * 1000),
      requiredClaims: ['jti', 'htm', 'htu', 'iat'],
    }));
  } catch (e) {
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw reject('bad_signature');
    if (e instanceof joseErrors.JWTClaimValidationFailed && e.reason === 'missing') throw reject('missing_claim');
    if (e instanceof joseErrors.JOSEAlgNotAllowed) throw reject('algorithm_not_allowed');
    // The embedded key does not import (WebCrypto DataError: not a point on
    // the curve, wrong sizes) or does not fit the algorithm.
    if (e instanceof DOMException || e instanceof TypeError || e instanceof joseErrors.JOSENotSupported) {
      throw reject('bad_key');
    }
    throw reject('malformed');
  }

  const { jti, htm, htu, iat } = payload as { jti: unknown; htm: unknown; htu: unknown; iat: unknown };
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) throw reject('malformed');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw reject('malformed');
  if (htm !== options.method) throw reject('htm_mismatch');
  const expectedHtu = normalizeHtu(options.url);
  if (expectedHtu === undefined || typeof htu !== 'string' || normalizeHtu(htu) !== expectedHtu) {
    throw reject('htu_mismatch');
  }
  if (iat < nowSec - maxAge) throw reject('too_old');
  if (iat > nowSec + tolerance) throw reject('issued_in_future');
  if (options.nonce !== undefined && !safeEqual(payload.nonce, options.nonce)) throw reject('nonce_mismatch');

  const expectedAth =
    options.accessTokenHash ??
    (options.accessToken === undefined
      ? undefined
      : createHash('sha256').update(options.accessToken).digest('base64url'));
  if (expectedAth !== undefined && !safeEqual(payload.ath, expectedAth)) throw reject('ath_mismatch');

  const publicJwk = Object.fromEntries(members.map((m) => [m, (jwk as Record<string, unknown>)[m]])) as JWK;
  const jkt = await jwkThumbprint(publicJwk);
  if (options.expectedJkt !== undefined && !safeEqual(jkt, options.expectedJkt)) throw reject('jkt_mismatch');

  // Keyed by thumbprint too: jtis are unique per client key, and scoping by
  // key means one client's (possibly poor) jti choice cannot collide with,
  // and so block, another's.
  const expiresAtMs = Math.ceil((iat + maxAge + 1) * 1000);
  let replayed: boolean;
  try {
    replayed = await options.replay.seen(`${jkt}:${jti}`, expiresAtMs);
  } catch {
    throw reject('replay_unavailable');
  }
  if (replayed !== false) throw reject('replayed');
  return { jkt, jti, iat, publicJwk };
}

// Constant-time for equal lengths. These values are not secret (they travel
// with the request) but comparing protocol bindings this way costs nothing.
function safeEqual(actual: unknown, expected: string): boolean {
  if (typeof actual !== 'string') return false;
  const a = Buffer.from(actual);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function reject(reason: DpopRejectReason): IdentityRejectedError<DpopRejectReason> {
  return new IdentityRejectedError('dpop', reason);
}
