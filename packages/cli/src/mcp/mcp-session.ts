import { randomBytes } from 'node:crypto';
import type { ChildTask, CustosCalls } from './custos-calls.js';
import { MCP_CODES, McpToolError } from './mcp-errors.js';

/**
 * The tokens one MCP server process acts with: the task token it was started
 * with, and the children it delegated, each known to the model only by a
 * handle. A handle is 128 random bits, meaningful only inside this process:
 * it is not a token (custos does not know it), it cannot be replayed against
 * custos, and a handle from another session is simply unknown here.
 * Children are ended when the session closes.
 */
export class McpSession {
  readonly #token: string;
  readonly #children = new Map<string, ChildTask>();

  constructor(
    token: string,
    readonly calls: CustosCalls,
    readonly proxyAddress: string,
  ) {
    this.#token = token;
  }

  /** The token a tool acts with: the session's own, or a delegated child's by handle. */
  token(handle: string | undefined): string {
    if (handle === undefined) return this.#token;
    const child = this.#children.get(handle);
    if (!child) throw new McpToolError(MCP_CODES.unknownHandle, 'handle: not a handle this MCP server issued');
    return child.token;
  }

  /** Keeps a child and returns its new handle. */
  keep(child: ChildTask): string {
    const handle = `hdl_${randomBytes(16).toString('base64url')}`;
    this.#children.set(handle, child);
    return handle;
  }

  /** Every token held, for scrubbing tool results (belt and braces: none should ever be in one). */
  tokens(): string[] {
    return [this.#token, ...[...this.#children.values()].map((c) => c.token)];
  }

  /** Ends the delegated children (best effort: a child also ends when its TTL runs out or its parent ends). */
  async close(): Promise<void> {
    const children = [...this.#children.values()];
    this.#children.clear();
    await Promise.allSettled(children.map((c) => this.calls.end(c.token, c.taskId)));
  }
}
