import {
  CustosApiError,
  CustosProtocolError,
  type CustosSdkError,
  CustosTimeoutError,
  CustosUnreachableError,
} from './custos-errors.js';
import type { DpopKey } from './dpop-key.js';

/** How the client talks to custos. */
export interface TransportOptions {
  /** The server, e.g. `http://127.0.0.1:8420` (what `CUSTOS_ADDR` names for the CLI). */
  readonly address: string;
  /** Per attempt, for the whole exchange (headers and body). Default 30 s, as the CLI. */
  readonly timeoutMs?: number;
  /** How many times an idempotent request is repeated after a 503. Default 2; 0 turns retries off. */
  readonly retries?: number;
  /** The first backoff delay; it doubles each retry (with jitter), capped at 2 s. Default 200 ms. */
  readonly retryBaseDelayMs?: number;
  /**
   * custos's credential proxy, for `task.upstream(NAME)`: e.g.
   * `http://127.0.0.1:8421`. Default `CUSTOS_PROXY_ADDR` (set by `custos run --proxy`).
   */
  readonly proxyAddress?: string;
}

/** One request. */
export interface CallOptions {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Starts with `/`; path segments already encoded. */
  readonly path: string;
  /** Sent as `Authorization: Bearer`. */
  readonly token?: string | undefined;
  readonly json?: unknown;
  /** Sent `application/x-www-form-urlencoded`, as the OAuth endpoints define. */
  readonly form?: Readonly<Record<string, string>>;
  /**
   * Whether sending the request twice has the effect of sending it once
   * (reads, ending or revoking a task or lease, renewing a lease). Only these
   * are retried after a 503: see {@link HttpTransport.call}.
   */
  readonly idempotent: boolean;
  /** Other values that must never appear in an error message (a bootstrap or subject token). */
  readonly secrets?: readonly string[];
  /** For a DPoP-bound token: a fresh proof per attempt, and `token` under the `DPoP` scheme. */
  readonly dpop?: DpopBinding | undefined;
}

/** How a DPoP-bound task proves its key on a request. */
export interface DpopBinding {
  readonly key: DpopKey;
  /** custos's issuer URL: the server checks `htu` against issuer + path, whatever address the client dialled. */
  readonly issuer: string;
  /** The token the proof is made for (`ath`): the task's own, or the subject token of an exchange. */
  readonly accessToken: string;
}

/** How a task authenticates its own requests: its token, and its DPoP key if the token is bound. */
export interface TaskAuth {
  readonly token: string;
  readonly dpop?: DpopBinding | undefined;
}

/** The DPoP header of one attempt, for `method` and `path` (query dropped by the proof). */
const dpopProof = (binding: DpopBinding, method: string, path: string) =>
  binding.key.proof(method, `${binding.issuer.replace(/\/+$/, '')}${path}`, binding.accessToken);

export const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_BACKOFF_MS = 2_000;

/**
 * fetch with a timeout, custos's error shapes and bounded retries.
 *
 * **Why only idempotent requests are retried after a 503.** A 503 from
 * custos does *not* promise that nothing happened: the audit plugin answers
 * `CUSTOS_ERR_AUDIT_UNAVAILABLE` (503) when the *response* event cannot be
 * written, after the handler ran (packages/server/src/plugins/audit-plugin.ts
 * — the secret is withheld, but a child task may have been minted or a
 * database user created); `CUSTOS_ERR_ENGINE_UNAVAILABLE` and
 * `CUSTOS_ERR_STORAGE` can come from half-way through a handler; a node
 * sealed while a request was in flight answers 503 for work it did. So a
 * retry is safe only where doing it twice equals doing it once: reads,
 * ending/revoking a task or lease, renewing a lease (renewal sets the expiry
 * to now + increment). A bootstrap login is never retried — the token is
 * single-use, and a second use is reported to operators as a replay — nor
 * a delegation or a credential issue, which would mint a second child or
 * database user. Nothing else (a 500, a timeout, a refused connection) is
 * retried: the caller decides.
 */
export class HttpTransport {
  readonly address: string;
  readonly timeoutMs: number;
  /** The credential proxy's address, when configured. */
  readonly proxyAddress: string | undefined;
  readonly #retries: number;
  readonly #baseDelayMs: number;

  constructor(options: TransportOptions) {
    const url = new URL(options.address);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError('address: an http:// or https:// URL');
    }
    this.address = options.address.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.proxyAddress = options.proxyAddress ?? process.env.CUSTOS_PROXY_ADDR;
    this.#retries = Math.max(0, Math.floor(options.retries ?? 2));
    this.#baseDelayMs = options.retryBaseDelayMs ?? 200;
  }

  /** Sends the request; returns the parsed JSON body (undefined for an empty one) or throws a {@link CustosSdkError}. */
  async call(options: CallOptions): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once(options);
      } catch (error) {
        const retry =
          options.idempotent && attempt < this.#retries && error instanceof CustosApiError && error.status === 503;
        if (!retry) throw error;
        await sleep(backoff(this.#baseDelayMs, attempt));
      }
    }
  }

  /**
   * A streamed GET (server-sent events): resolves with the response once its
   * status and headers arrive, within the timeout; the body is the caller's
   * to read, for as long as it lasts, until `signal` aborts. Never retried
   * here: the subscriber decides when to reconnect.
   */
  async stream(path: string, token: string, signal: AbortSignal, dpop?: DpopBinding): Promise<Response> {
    const headers: Record<string, string> = {
      accept: 'text/event-stream',
      authorization: `${dpop ? 'DPoP' : 'Bearer'} ${token}`,
    };
    if (dpop) headers.dpop = await dpopProof(dpop, 'GET', path);
    const timer = setTimeout(() => headersTimeout.abort(), this.timeoutMs);
    const headersTimeout = new AbortController();
    let response: Response;
    try {
      response = await fetch(`${this.address}${path}`, {
        headers,
        signal: AbortSignal.any([signal, headersTimeout.signal]),
        redirect: 'manual',
      });
    } catch (cause) {
      if (headersTimeout.signal.aborted) throw new CustosTimeoutError(this.timeoutMs);
      if (signal.aborted) throw cause;
      throw new CustosUnreachableError(this.address, { cause });
    } finally {
      clearTimeout(timer);
    }
    if (response.status >= 300 && response.status < 400) throw new CustosProtocolError('a redirect (not followed)');
    if (!response.ok) throw apiError(response.status, parseJson(await response.text()), [token]);
    return response;
  }

  async #once(options: CallOptions): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.token !== undefined) headers.authorization = `${options.dpop ? 'DPoP' : 'Bearer'} ${options.token}`;
    if (options.dpop) headers.dpop = await dpopProof(options.dpop, options.method, options.path);
    let body: string | undefined;
    if (options.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(options.form).toString();
    } else if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.address}${options.path}`, {
        method: options.method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal: controller.signal,
        // custos never redirects its API. Following one would send the
        // token to wherever the redirect points.
        redirect: 'manual',
      });
      text = await response.text();
    } catch (cause) {
      if (controller.signal.aborted) throw new CustosTimeoutError(this.timeoutMs);
      throw new CustosUnreachableError(this.address, { cause });
    } finally {
      clearTimeout(timer);
    }
    if (response.status >= 300 && response.status < 400) throw new CustosProtocolError('a redirect (not followed)');
    const parsed = parseJson(text);
    if (!response.ok) throw apiError(response.status, parsed, [options.token, ...(options.secrets ?? [])]);
    if (text.length > 0 && parsed === undefined) throw new CustosProtocolError('a body that is not JSON');
    return parsed;
  }
}

/**
 * The server's error, in either of its shapes: `{ error: { code, message } }`
 * or, from the OAuth endpoints, RFC 6749's `{ error, error_description,
 * custos_code }`. A body in neither shape (a proxy's HTML page) keeps the
 * status with a protocol code, so a 503 from a load balancer is still a 503.
 */
export function apiError(status: number, body: unknown, secrets: ReadonlyArray<string | undefined>): CustosSdkError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const nested = typeof b.error === 'object' && b.error !== null ? (b.error as Record<string, unknown>) : undefined;
  const code = typeof b.custos_code === 'string' ? b.custos_code : nested?.code;
  const message =
    typeof b.error_description === 'string'
      ? b.error_description
      : typeof nested?.message === 'string'
        ? nested.message
        : typeof b.error === 'string'
          ? b.error
          : `HTTP ${status}`;
  const safeCode = typeof code === 'string' && /^CUSTOS_ERR_[A-Z_]{1,64}$/.test(code) ? code : 'CUSTOS_ERR_PROTOCOL';
  return new CustosApiError(safeCode, status, scrub(message.slice(0, 300), secrets));
}

/** Removes any credential this request carried from a message (defence in depth: the server never echoes one). */
function scrub(message: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = message;
  for (const secret of secrets) if (secret && secret.length >= 8) out = out.split(secret).join('[redacted]');
  return out;
}

export function parseJson(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Exponential backoff with jitter (half fixed, half random), so many clients do not retry in step. */
function backoff(baseMs: number, attempt: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
