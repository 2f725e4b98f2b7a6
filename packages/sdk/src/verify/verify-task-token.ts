import { createHash, webcrypto } from 'node:crypto';
import { CustosUsageError, InsufficientScopeError, TaskTokenInvalidError } from '../custos-errors.js';
import { RemoteJwks, type RemoteJwksOptions } from './remote-jwks.js';
import { parseScope, type ScopeEntry, scopeCovers } from './task-scope.js';
import { parseTaskClaims, type TaskClaims } from './task-token-claims.js';

/** Options of {@link verifyTaskToken}. */
export interface VerifyTaskTokenOptions {
  /** custos's issuer URL: the token's `iss` must equal it. */
  readonly issuer: string;
  /** The `aud` required. custos task tokens are issued for `custos` (the default). */
  readonly audience?: string;
  /**
   * What the tool requires: `ACTION:PATTERN` entries (`read:kv/team/db`,
   * `issue:pg-main/*`), all of which the token's `scope` must cover, with the
   * server's semantics. Omitted: any valid task token passes.
   */
  readonly requiredScope?: string;
  /** Default `${issuer}/.well-known/jwks.json`. */
  readonly jwksUrl?: string;
  /** A key set to share (one per custos deployment); default one per `jwksUrl`, kept by the module. */
  readonly jwks?: RemoteJwks;
  /** Clock skew allowed for `exp` and `nbf`, seconds. Default 5 (as the server), at most 60. */
  readonly clockToleranceSec?: number;
  /**
   * The RFC 7638 thumbprint of the key of a DPoP proof the caller has
   * already verified for this request. A DPoP-bound token (`cnf.jkt`) is
   * refused unless this matches: it must never pass as a bearer token.
   */
  readonly dpopJkt?: string;
  /** Epoch ms; default Date.now(). */
  readonly now?: number;
}

/** A verified task token: who holds it, in which task tree, with what scope. */
export type VerifiedTask = TaskClaims;

/** The JWS `typ` of a task token: any other typed JWT custos signs cannot stand in for one. */
const TASK_TOKEN_TYP = 'custos-task+jwt';
const MAX_TOKEN_LENGTH = 8 * 1024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const HEADER_MEMBERS = new Set(['alg', 'kid', 'typ']);

const sharedKeySets = new Map<string, RemoteJwks>();
const verified = new Map<string, { claims: TaskClaims; kid: string }>();
/** Tokens whose signature verified, remembered (by SHA-256) so a token used again costs no signature check. */
const VERIFIED_CACHE_SIZE = 2_048;

/**
 * Verifies a custos task token offline — no request to custos per token —
 * and returns its claims, or throws {@link TaskTokenInvalidError} (401: with a
 * `reason` for the tool's log) or {@link InsufficientScopeError} (403).
 *
 * The rules are the server's own (docs/task-tokens.md): a compact JWS of at
 * most 8 KiB; a header of exactly `alg` `EdDSA`, `typ` `custos-task+jwt` and
 * a `kid` — an algorithm allow-list of one, so never `none` and never an
 * HMAC keyed with the public key, and no `crit`, `jku`, `jwk`, `x5u` to be
 * tricked by; an Ed25519 signature by a key of custos's JWKS (crypto.subtle);
 * well-typed claims; `exp`/`nbf` within `clockToleranceSec`; `iss`; `aud`;
 * a DPoP binding only with its verified proof; then `requiredScope`.
 *
 * What it cannot see: revocation. A revoked task's token verifies until its
 * `exp` (minutes, by role); a tool that must honour a revocation at once
 * introspects (`POST /v1/oauth/introspect`).
 *
 * @example
 * ```ts
 * const task = await verifyTaskToken(bearer, { issuer: 'https://custos.internal', requiredScope: 'read:kv/team/db' });
 * log.info({ task: task.task_id, role: task.role }, 'call accepted');
 * ```
 */
export async function verifyTaskToken(token: string, options: VerifyTaskTokenOptions): Promise<VerifiedTask> {
  if (typeof options?.issuer !== 'string' || options.issuer.length === 0) {
    throw new CustosUsageError('issuer: custos’s issuer URL is required');
  }
  const required = requiredEntries(options.requiredScope);
  const tolerance = options.clockToleranceSec ?? 5;
  if (!(tolerance >= 0 && tolerance <= 60)) throw new CustosUsageError('clockToleranceSec: 0 to 60');
  if (typeof token !== 'string' || token.length === 0) throw new TaskTokenInvalidError('malformed');
  if (token.length > MAX_TOKEN_LENGTH) throw new TaskTokenInvalidError('oversized');
  const jwks =
    options.jwks ?? sharedJwks(options.jwksUrl ?? `${options.issuer.replace(/\/+$/, '')}/.well-known/jwks.json`);

  // Keyed by key set and token: a signature checked against one deployment's keys says nothing about another's.
  const digest = `${jwks.url} ${createHash('sha256').update(token).digest('base64url')}`;
  const hit = verified.get(digest);
  let claims: TaskClaims;
  if (hit !== undefined && jwks.has(hit.kid)) {
    claims = hit.claims;
  } else {
    const fresh = await verifySignature(token, jwks);
    claims = fresh.claims;
    remember(digest, fresh);
  }
  checkClaims(claims, options, tolerance);
  if (required !== undefined && !scopeCovers(claims.scopeEntries, required)) {
    throw new InsufficientScopeError(options.requiredScope as string);
  }
  return claims;
}

function requiredEntries(text: string | undefined): ScopeEntry[] | undefined {
  if (text === undefined) return undefined;
  const entries = parseScope(text);
  if (entries === undefined) throw new CustosUsageError('requiredScope: ACTION:PATTERN entries, as in a task scope');
  return entries;
}

function sharedJwks(url: string): RemoteJwks {
  let jwks = sharedKeySets.get(url);
  if (jwks === undefined) {
    jwks = new RemoteJwks(url);
    sharedKeySets.set(url, jwks);
  }
  return jwks;
}

/** Creates the key set for a custos deployment, to pass as `jwks` (e.g. with other timeouts). */
export function createRemoteJwks(url: string | URL, options?: RemoteJwksOptions): RemoteJwks {
  return new RemoteJwks(url, options);
}

async function verifySignature(token: string, jwks: RemoteJwks): Promise<{ claims: TaskClaims; kid: string }> {
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (second < 0 || token.indexOf('.', second + 1) >= 0) throw new TaskTokenInvalidError('malformed');
  const encodedHeader = token.slice(0, first);
  const encodedPayload = token.slice(first + 1, second);
  const encodedSignature = token.slice(second + 1);
  // Node's base64url decoder skips characters it does not know: check the alphabet first.
  if (!BASE64URL.test(encodedHeader) || !BASE64URL.test(encodedPayload) || !BASE64URL.test(encodedSignature)) {
    throw new TaskTokenInvalidError('malformed');
  }
  const signature = Buffer.from(encodedSignature, 'base64url');
  // One spelling per signature: 64 bytes, canonically encoded.
  if (signature.length !== 64 || signature.toString('base64url') !== encodedSignature) {
    throw new TaskTokenInvalidError('malformed');
  }
  const kid = checkHeader(decodeJson(encodedHeader));
  const key = await jwks.key(kid);
  if (key === undefined) throw new TaskTokenInvalidError('unknown_kid');
  const data = Buffer.from(token.slice(0, second), 'latin1');
  if (!(await webcrypto.subtle.verify({ name: 'Ed25519' }, key, signature, data))) {
    throw new TaskTokenInvalidError('bad_signature');
  }
  const claims = parseTaskClaims(decodeJson(encodedPayload));
  if (claims === undefined) throw new TaskTokenInvalidError('bad_claims');
  return { claims, kid };
}

/** The header's kid, if the header is exactly what custos writes: `alg` EdDSA, `typ` custos-task+jwt, `kid`. */
function checkHeader(header: unknown): string {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new TaskTokenInvalidError('malformed');
  }
  const h = header as Record<string, unknown>;
  if (h.alg !== 'EdDSA') throw new TaskTokenInvalidError('alg_not_allowed');
  if (h.typ !== TASK_TOKEN_TYP) throw new TaskTokenInvalidError('typ_mismatch');
  if (Object.keys(h).some((name) => !HEADER_MEMBERS.has(name))) throw new TaskTokenInvalidError('bad_header');
  if (typeof h.kid !== 'string' || h.kid.length === 0 || h.kid.length > 128) {
    throw new TaskTokenInvalidError('unknown_kid');
  }
  return h.kid;
}

/** The checks that depend on the time and the caller: run on every use, cached signature or not. */
function checkClaims(claims: TaskClaims, options: VerifyTaskTokenOptions, tolerance: number): void {
  const nowSec = (options.now ?? Date.now()) / 1000;
  if (claims.exp <= nowSec - tolerance) throw new TaskTokenInvalidError('expired');
  if (claims.nbf > nowSec + tolerance) throw new TaskTokenInvalidError('not_yet_valid');
  if (claims.iss !== options.issuer) throw new TaskTokenInvalidError('wrong_issuer');
  const audience = options.audience ?? 'custos';
  const aud = claims.aud;
  if (!(typeof aud === 'string' ? aud === audience : aud.includes(audience))) {
    throw new TaskTokenInvalidError('wrong_audience');
  }
  if (claims.cnf !== undefined) {
    if (options.dpopJkt === undefined) throw new TaskTokenInvalidError('dpop_proof_required');
    if (options.dpopJkt !== claims.cnf.jkt) throw new TaskTokenInvalidError('dpop_key_mismatch');
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeJson(part: string): unknown {
  try {
    return JSON.parse(utf8.decode(Buffer.from(part, 'base64url')));
  } catch {
    throw new TaskTokenInvalidError('malformed');
  }
}

/** Bounded: the oldest entry goes first (a Map iterates in insertion order). */
function remember(digest: string, entry: { claims: TaskClaims; kid: string }): void {
  verified.delete(digest);
  verified.set(digest, entry);
  if (verified.size > VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value as string);
}
