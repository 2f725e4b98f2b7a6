import { webcrypto } from 'node:crypto';
import { CustosProtocolError, CustosTimeoutError, CustosUnreachableError } from '../custos-errors.js';
import { readBounded } from './bounded-body.js';

type VerifyKey = webcrypto.CryptoKey;

/** Options of {@link RemoteJwks}. */
export interface RemoteJwksOptions {
  /** Per fetch. Default 5 s. */
  readonly timeoutMs?: number;
  /**
   * The least time between two fetches caused by tokens (an unknown `kid`, or
   * a refresh after a failure). Default 30 s, as jose's `cooldownDuration`.
   */
  readonly cooldownMs?: number;
  /** How long a fetched key set is used before it is fetched again. Default: the response's `Cache-Control: max-age`, else 60 s. */
  readonly maxAgeMs?: number;
}

const MAX_JWKS_BYTES = 256 * 1024;
const MAX_KEYS = 64;
const DEFAULT_MAX_AGE_MS = 60_000;
/** Bounds for a server-sent max-age: at least a second, at most an hour between fetches. */
const MIN_MAX_AGE_MS = 1_000;
const MAX_MAX_AGE_MS = 3_600_000;

/**
 * custos's task-token keys, fetched from `/.well-known/jwks.json` and cached.
 *
 * - **Warm path**: a key is looked up in memory; no request per token.
 * - **Key rotation**: custos publishes a new key before it signs with it
 *   (docs/task-tokens.md), so the periodic refetch (every max-age) usually
 *   has it already; a token naming a `kid` not in the set triggers one
 *   refetch. A refetch replaces the whole set, so a retired key stops being
 *   accepted at the next one.
 * - **No hammering**: fetches caused by tokens are at most one per
 *   `cooldownMs`, and concurrent ones share one request, so an attacker
 *   sending random `kid`s costs the server one request per cooldown, not one
 *   per token.
 * - **Failures**: while a refetch fails, the last good set stays in use (a
 *   custos restart must not fail every tool); with no set at all, verification
 *   fails with `CUSTOS_ERR_UNREACHABLE` (a resource server answers 503).
 * - Only Ed25519 (`OKP`/`Ed25519`, `alg` `EdDSA` or absent, `use` `sig` or
 *   absent) keys are imported, as `verify`-only non-extractable keys: a JWKS
 *   entry can never become an HMAC secret or any other algorithm's key. The
 *   response is bounded (256 KiB, 64 keys), redirects are not followed, and
 *   every fetch has a timeout.
 */
export class RemoteJwks {
  readonly url: string;
  readonly #timeoutMs: number;
  readonly #cooldownMs: number;
  readonly #fixedMaxAgeMs: number | undefined;
  #keys = new Map<string, VerifyKey>();
  #loaded = false;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #maxAgeMs = DEFAULT_MAX_AGE_MS;
  /** performance.now() of the last fetch started (monotonic: rate limiting must not follow the wall clock). */
  #lastStart = Number.NEGATIVE_INFINITY;
  #inFlight: Promise<void> | undefined;

  constructor(url: string | URL, options: RemoteJwksOptions = {}) {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new TypeError('jwksUrl: http(s) only');
    this.url = parsed.href;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#fixedMaxAgeMs = options.maxAgeMs;
  }

  /**
   * The key for `kid`, fetching the set when it is missing, stale, or lacks
   * `kid` (each within the rate limit); undefined when custos has no such key.
   */
  async key(kid: string): Promise<VerifyKey | undefined> {
    const stale = performance.now() - this.#fetchedAt > this.#maxAgeMs;
    if (!this.#loaded || stale || !this.#keys.has(kid)) await this.#refresh(!this.#loaded);
    return this.#keys.get(kid);
  }

  /** Whether `kid` is in the set now (no fetch): a cached verification is used only while its key still is. */
  has(kid: string): boolean {
    return this.#keys.has(kid) && performance.now() - this.#fetchedAt <= this.#maxAgeMs;
  }

  async #refresh(mustLoad: boolean): Promise<void> {
    if (this.#inFlight) return this.#inFlight;
    if (!mustLoad && performance.now() - this.#lastStart < this.#cooldownMs) return;
    // Without any key set, a fetch is still rate limited, but by the
    // cooldown only after a failure: the first one goes out at once.
    if (mustLoad && performance.now() - this.#lastStart < this.#cooldownMs) {
      throw new CustosUnreachableError(new URL(this.url).origin);
    }
    this.#lastStart = performance.now();
    this.#inFlight = this.#fetch().finally(() => {
      this.#inFlight = undefined;
    });
    try {
      await this.#inFlight;
    } catch (error) {
      if (mustLoad) throw error;
      // Keep the last good set; the next attempt waits for the cooldown.
    }
  }

  async #fetch(): Promise<void> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.url, { headers: { accept: 'application/json' }, redirect: 'error', signal });
      text = await readBounded(response, MAX_JWKS_BYTES, 'JWKS');
    } catch (cause) {
      if (cause instanceof CustosProtocolError) throw cause;
      if (signal.aborted) throw new CustosTimeoutError(this.#timeoutMs);
      throw new CustosUnreachableError(new URL(this.url).origin, { cause });
    }
    if (!response.ok) throw new CustosProtocolError(`JWKS answered ${response.status}`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new CustosProtocolError('JWKS is not JSON');
    }
    const keys = (body as { keys?: unknown })?.keys;
    if (!Array.isArray(keys)) throw new CustosProtocolError('JWKS has no keys');
    const imported = new Map<string, VerifyKey>();
    for (const jwk of keys.slice(0, MAX_KEYS)) {
      const usable = usableKey(jwk);
      if (usable === undefined || imported.has(usable.kid)) continue;
      imported.set(
        usable.kid,
        await webcrypto.subtle.importKey(
          'jwk',
          { kty: 'OKP', crv: 'Ed25519', x: usable.x },
          { name: 'Ed25519' },
          false,
          ['verify'],
        ),
      );
    }
    this.#keys = imported;
    this.#loaded = true;
    this.#fetchedAt = performance.now();
    this.#maxAgeMs = this.#fixedMaxAgeMs ?? maxAge(response.headers.get('cache-control'));
  }
}

/** An Ed25519 verification key of a custos JWKS, or undefined for any other entry. */
function usableKey(jwk: unknown): { kid: string; x: string } | undefined {
  if (typeof jwk !== 'object' || jwk === null) return undefined;
  const k = jwk as Record<string, unknown>;
  if (k.kty !== 'OKP' || k.crv !== 'Ed25519') return undefined;
  if (k.alg !== undefined && k.alg !== 'EdDSA') return undefined;
  if (k.use !== undefined && k.use !== 'sig') return undefined;
  if (k.d !== undefined) return undefined; // a private key published by mistake is not used
  if (typeof k.kid !== 'string' || k.kid.length === 0 || k.kid.length > 128) return undefined;
  if (typeof k.x !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(k.x)) return undefined;
  return { kid: k.kid, x: k.x };
}

function maxAge(cacheControl: string | null): number {
  const seconds = /(?:^|,)\s*max-age=(\d{1,7})\s*(?:,|$)/i.exec(cacheControl ?? '')?.[1];
  if (seconds === undefined) return DEFAULT_MAX_AGE_MS;
  return Math.min(MAX_MAX_AGE_MS, Math.max(MIN_MAX_AGE_MS, Number(seconds) * 1000));
}
