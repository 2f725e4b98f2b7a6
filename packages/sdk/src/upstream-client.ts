import { inspect } from 'node:util';
import {
  CustosApiError,
  CustosProtocolError,
  CustosTimeoutError,
  CustosUnreachableError,
  CustosUsageError,
} from './custos-errors.js';
import { readBounded } from './verify/bounded-body.js';

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** Printable ASCII without spaces (no CR/LF to inject, no raw bytes), no fragment, no backslash. */
const PATH = /^\/[\x21-\x22\x24-\x5b\x5d-\x7e]*$/;
/** A dot segment, written or percent-encoded, or an encoded slash or backslash. */
const ESCAPE = /(^|\/)(\.|%2e){1,2}(\/|$)|%2f|%5c/i;
/**
 * Headers the caller may not set: the SDK authenticates the task to the
 * proxy itself, and the proxy injects the upstream's credential; a second
 * credential in the request would be stripped at best and confusing at worst.
 */
const RESERVED = new Set(['authorization', 'proxy-authorization', 'x-custos-token', 'dpop', 'host']);
/** Set by the proxy on its own refusals only (the proxy drops it from upstream answers). */
const PROXY_ERROR_HEADER = 'x-custos-proxy-error';
const MAX_REFUSAL_BYTES = 64 * 1024;

/**
 * One upstream, called through custos's credential proxy in base-URL mode
 * (`PROXY/u/NAME/<path>`) with the task's token. The proxy authorises `use`
 * on `upstream/NAME`, attaches the upstream's key (which this process never
 * sees), audits the call with the task chain and redacts the answer.
 *
 * `fetch` is the platform's: the request body and the answer stream (SSE,
 * large uploads), and the answer is the upstream's own `Response`, whatever
 * its status. Only the proxy's refusals throw, as {@link CustosApiError} with
 * the proxy's code (`CUSTOS_ERR_UNAUTHENTICATED` for a revoked task,
 * `CUSTOS_ERR_PERMISSION_DENIED`, `CUSTOS_ERR_PROXY_PATH_NOT_ALLOWED`,
 * `CUSTOS_ERR_UPSTREAM_TIMEOUT`, …). Nothing is retried: an upstream call
 * may not be idempotent.
 */
export class Upstream {
  readonly name: string;
  /** `PROXY/u/NAME`: a base URL for SDKs that take one (OpenAI, Anthropic), with the task token as their API key. */
  readonly baseUrl: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #origin: string;

  /** @internal Made by `task.upstream(name)`. */
  constructor(name: string, proxyAddress: string, token: string, timeoutMs: number) {
    if (typeof name !== 'string' || !NAME.test(name)) throw new CustosUsageError('upstream: a custos upstream name');
    let proxy: URL;
    try {
      proxy = new URL(proxyAddress);
    } catch {
      throw new CustosUsageError('proxyAddress: an http:// or https:// URL');
    }
    if ((proxy.protocol !== 'http:' && proxy.protocol !== 'https:') || proxy.search || proxy.hash || proxy.username) {
      throw new CustosUsageError('proxyAddress: an http:// or https:// URL without query or credentials');
    }
    this.name = name;
    this.baseUrl = `${proxy.origin}${proxy.pathname.replace(/\/+$/, '')}/u/${name}`;
    this.#origin = proxy.origin;
    this.#token = token;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Sends `init` to `path` below the upstream's base URL (`/v1/chat/completions`,
   * with a query if any). The path is refused before anything is sent when it
   * has `.`/`..` segments (written or encoded), an encoded slash or
   * backslash, a fragment, spaces or control characters: `fetch` would
   * resolve `..` itself and send `/u/NAME/../other/…` to another upstream.
   * Redirects are returned, never followed (a redirect to another host must
   * not carry the task token there). `timeoutMs` (the client's) bounds the
   * wait for the answer's head; a streamed body may then last as long as it
   * lasts — abort it with `init.signal`.
   *
   * @example
   * ```ts
   * const answer = await task.upstream('openai').fetch('/chat/completions', {
   *   method: 'POST',
   *   headers: { 'content-type': 'application/json' },
   *   body: JSON.stringify({ model, messages, stream: true }),
   * });
   * for await (const chunk of answer.body!) process.stdout.write(chunk); // redacted by custos on the way
   * ```
   */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    if (typeof path !== 'string' || path.length > 4096 || !PATH.test(path)) {
      throw new CustosUsageError('path: starts with /, printable ASCII, no spaces, "#" or "\\"');
    }
    if (ESCAPE.test(path.split('?')[0] as string)) {
      throw new CustosUsageError('path: no "." or ".." segments and no encoded "/" or "\\"');
    }
    const headers = new Headers(init.headers);
    for (const name of RESERVED) {
      if (headers.has(name)) throw new CustosUsageError(`headers: ${name} is set by the SDK or the proxy`);
    }
    headers.set('authorization', `Bearer ${this.#token}`);
    const headersTimeout = new AbortController();
    const timer = setTimeout(() => headersTimeout.abort(), this.#timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, headersTimeout.signal]) : headersTimeout.signal;
    const streamed = typeof ReadableStream !== 'undefined' && init.body instanceof ReadableStream;
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        ...init,
        headers,
        signal,
        redirect: 'manual',
        // A streamed request body needs half-duplex (the Fetch standard's rule for Node's fetch).
        ...(streamed ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (cause) {
      if (init.signal?.aborted) throw cause; // the caller's own abort, as fetch reports it
      if (headersTimeout.signal.aborted) throw new CustosTimeoutError(this.#timeoutMs);
      throw new CustosUnreachableError(this.#origin, { cause });
    } finally {
      clearTimeout(timer);
    }
    const refusal = response.headers.get(PROXY_ERROR_HEADER);
    if (refusal === null) return response;
    throw await proxyRefusal(response, refusal);
  }

  /** Without the token, for logs. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, baseUrl: this.baseUrl };
  }

  [inspect.custom](): string {
    return `Upstream ${JSON.stringify(this.toJSON())}`;
  }
}

/** The proxy's refusal as the SDK's error: its code and status, its fixed message. */
async function proxyRefusal(response: Response, code: string): Promise<CustosApiError | CustosProtocolError> {
  let message = `the credential proxy refused the call (${response.status})`;
  try {
    const body = JSON.parse(await readBounded(response, MAX_REFUSAL_BYTES, 'proxy refusal')) as {
      error?: { message?: unknown };
    };
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    // The code in the header is what counts; the body only words it.
  }
  if (!/^CUSTOS_ERR_[A-Z0-9_]{1,64}$/.test(code)) return new CustosProtocolError('malformed proxy refusal');
  return new CustosApiError(code, response.status, message);
}
