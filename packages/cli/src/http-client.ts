import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError, type CliIo, EXIT } from './cli-io.js';

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

/** A small fetch client for the custos HTTP API. */
export class CustosClient {
  readonly addr: string;
  readonly #token: string | undefined;

  constructor(io: CliIo) {
    this.addr = (io.env.CUSTOS_ADDR ?? DEFAULT_ADDR).replace(/\/+$/, '');
    this.#token = resolveToken(io);
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.raw(method, path, body);
    const text = await response.text();
    const parsed = text ? safeJson(text) : undefined;
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new CliError(error?.code ?? `HTTP_${response.status}`, error?.message ?? response.statusText);
    }
    return parsed as T;
  }

  async raw(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(`${this.addr}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (cause) {
      throw new CliError(
        'CUSTOS_ERR_UNREACHABLE',
        `cannot reach ${this.addr} (${(cause as Error).message})`,
        EXIT.usage,
      );
    }
  }
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
