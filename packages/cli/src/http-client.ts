import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError, type CliIo, EXIT } from './cli-io.js';
import { resolveRequestTimeout, withRequestTimeout } from './request-timeout.js';

export const DEFAULT_ADDR = 'http://127.0.0.1:8420';

/**
 * Where the CLI finds its token, first match wins: CUSTOS_TOKEN; the file
 * named by CUSTOS_TOKEN_FILE; `~/.custos-token` (written by `custos login`);
 * and, for the embedded dev server started in this directory, the root token
 * file `./.custos/root-token` it wrote (mode 0600, readable only by its owner).
 */
export function resolveToken(io: CliIo): string | undefined {
  if (io.env.CUSTOS_TOKEN) return io.env.CUSTOS_TOKEN.trim();
  const candidates = [
    io.env.CUSTOS_TOKEN_FILE,
    join(homedir(), '.custos-token'),
    join(io.cwd, '.custos', 'root-token'),
  ];
  for (const file of candidates) {
    if (!file) continue;
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      // not there: try the next
    }
  }
  return undefined;
}

/**
 * A small fetch client for the custos HTTP API. Every request is bounded by
 * the request timeout ({@link resolveRequestTimeout}): an ordinary request
 * for the whole exchange, a streamed one ({@link raw}) for the server's first
 * answer only, so a long stream is not cut off but a silent server is.
 */
export class CustosClient {
  readonly addr: string;
  /** ms; 0 means no limit. */
  readonly timeoutMs: number;
  readonly #token: string | undefined;

  constructor(io: CliIo) {
    this.addr = (io.env.CUSTOS_ADDR ?? DEFAULT_ADDR).replace(/\/+$/, '');
    this.timeoutMs = resolveRequestTimeout(io);
    this.#token = resolveToken(io);
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const { response, text } = await this.exchange(path, this.#init(method, body));
    const parsed = text ? safeJson(text) : undefined;
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new CliError(error?.code ?? `HTTP_${response.status}`, error?.message ?? response.statusText);
    }
    return parsed as T;
  }

  /**
   * One request and its whole body, within the timeout. Sent as given: the
   * caller chooses the headers, this client's token included or not.
   */
  exchange(path: string, init: RequestInit): Promise<ExchangeResult> {
    return withRequestTimeout(this.addr, this.timeoutMs, async (signal) => {
      const response = await this.#fetch(path, init, signal);
      return { response, text: await response.text() };
    });
  }

  /** A streamed answer: the timeout covers the wait for its status and headers, not the body. */
  raw(method: string, path: string, body?: unknown): Promise<Response> {
    return withRequestTimeout(this.addr, this.timeoutMs, (signal) =>
      this.#fetch(path, this.#init(method, body), signal),
    );
  }

  /** A JSON request with this client's token. */
  #init(method: string, body: unknown): RequestInit {
    const headers: Record<string, string> = {};
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) };
  }

  async #fetch(path: string, init: RequestInit, signal: AbortSignal): Promise<Response> {
    try {
      return await fetch(`${this.addr}${path}`, { ...init, signal });
    } catch (cause) {
      // A timeout is reported by withRequestTimeout, with its own code.
      if (signal.aborted) throw cause;
      throw new CliError('CUSTOS_ERR_UNREACHABLE', `cannot reach ${this.addr} (${networkReason(cause)})`, EXIT.usage);
    }
  }
}

/** A response with its body read. */
export interface ExchangeResult {
  response: Response;
  text: string;
}

/** fetch says only "fetch failed"; the reason (ECONNREFUSED, a TLS error…) is in its cause. */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } })?.cause;
  if (typeof cause?.message === 'string' && cause.message) return cause.message.slice(0, 200);
  return (error as Error)?.message ?? String(error);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Encodes a secret path for a URL, keeping its slashes. */
export const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');
