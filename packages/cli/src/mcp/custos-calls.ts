import { McpToolError } from './mcp-errors.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/** What custos says about a live task token (RFC 7662 introspection of the token by itself). */
export interface TaskView {
  readonly task_id: string;
  readonly role: string;
  readonly scope: string;
  readonly expire_time: string;
  readonly depth: number;
  readonly parent_task_id: string | null;
  readonly task_chain: readonly string[];
}

/** A child issued by token exchange: its token stays in the MCP server, the rest may be shown. */
export interface ChildTask {
  readonly token: string;
  readonly taskId: string;
  readonly scope: string;
  readonly expireTime: string;
}

/**
 * The few custos API calls the MCP server makes, each authenticated by the
 * acting task's own token. Errors carry custos's code and message only: a
 * response body is never echoed whole (it could quote what was sent).
 */
export class CustosCalls {
  constructor(
    readonly address: string,
    readonly timeoutMs: number,
  ) {}

  /** Introspects `token` with itself: refuses (UNAUTHENTICATED) unless it is a live task token. */
  async introspect(token: string): Promise<TaskView> {
    const body = await this.#call('POST', '/v1/oauth/introspect', token, { token });
    if (body.active !== true) {
      throw new McpToolError('CUSTOS_ERR_UNAUTHENTICATED', 'the task token is not live (revoked, ended or expired)');
    }
    return {
      task_id: String(body.task_id),
      role: String(body.role),
      scope: String(body.scope ?? ''),
      expire_time: new Date(Number(body.exp) * 1000).toISOString(),
      depth: Number(body.depth),
      parent_task_id: typeof body.parent_task_id === 'string' ? body.parent_task_id : null,
      task_chain: Array.isArray(body.task_chain) ? body.task_chain.map(String) : [],
    };
  }

  /** RFC 8693 exchange: a child of the task, at most its scope and lifetime (custos refuses wider). */
  async delegate(token: string, scope: string, ttl: string | undefined): Promise<ChildTask> {
    const body = await this.#call('POST', '/v1/oauth/token', undefined, {
      grant_type: TOKEN_EXCHANGE,
      subject_token: token,
      subject_token_type: JWT_TOKEN_TYPE,
      requested_token_type: JWT_TOKEN_TYPE,
      scope,
      ...(ttl !== undefined ? { ttl } : {}),
    });
    return {
      token: String(body.access_token),
      taskId: String(body.task_id),
      scope: String(body.scope),
      expireTime: new Date(Date.now() + Number(body.expires_in) * 1000).toISOString(),
    };
  }

  /** An upstream's configuration, when the task may read it (`read` on `sys/upstreams/NAME`). */
  async upstream(token: string, name: string): Promise<Record<string, unknown>> {
    return this.#call('GET', `/v1/upstreams/${encodeURIComponent(name)}`, token);
  }

  /** Files a just-in-time access request for the task itself (docs/jit.md). */
  async requestAccess(
    token: string,
    request: { scope: string; reason: string; ttl?: string; children?: boolean },
  ): Promise<Record<string, unknown>> {
    const body = await this.#call('POST', '/v1/requests', token, undefined, request);
    return body.request as Record<string, unknown>;
  }

  /** The request, held by the server until it is decided or `waitSeconds` passed. */
  async awaitRequest(token: string, id: string, waitSeconds: number): Promise<Record<string, unknown>> {
    const body = await this.#call('GET', `/v1/requests/${encodeURIComponent(id)}?wait=${waitSeconds}s`, token);
    return body.request as Record<string, unknown>;
  }

  /** Ends a child task (best effort, at shutdown). */
  async end(token: string, taskId: string): Promise<void> {
    await this.#call('POST', `/v1/tasks/${encodeURIComponent(taskId)}/end`, token);
  }

  async #call(
    method: string,
    path: string,
    token: string | undefined,
    form?: Record<string, string>,
    json?: unknown,
  ): Promise<Record<string, unknown>> {
    let response: Response;
    // A long poll (`?wait=`) is held by the server: the timeout covers its hold too.
    const held = /[?&]wait=(\d+)s/.exec(path);
    const timeoutMs = this.timeoutMs > 0 && held ? this.timeoutMs + Number(held[1]) * 1000 : this.timeoutMs;
    try {
      response = await fetch(`${this.address}${path}`, {
        method,
        redirect: 'manual', // a redirect would carry the token elsewhere
        headers: {
          ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
          ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
          ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(form ? { body: new URLSearchParams(form).toString() } : {}),
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
        ...(timeoutMs > 0 ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
      });
    } catch (error) {
      if ((error as Error)?.name === 'TimeoutError') {
        throw new McpToolError('CUSTOS_ERR_TIMEOUT', 'custos did not answer in time');
      }
      throw new McpToolError('CUSTOS_ERR_UNREACHABLE', `custos does not answer at ${this.address}`);
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = {};
    }
    const record = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    if (!response.ok) throw refusal(response.status, record);
    return record;
  }
}

/** custos's refusal, as its code and message (the API's `error` object, or an OAuth error's `custos_code`). */
function refusal(status: number, body: Record<string, unknown>): McpToolError {
  const error = body.error;
  if (typeof error === 'object' && error !== null) {
    const e = error as { code?: unknown; message?: unknown };
    return new McpToolError(String(e.code ?? `HTTP_${status}`), String(e.message ?? 'refused'));
  }
  if (typeof body.custos_code === 'string') {
    return new McpToolError(body.custos_code, String(body.error_description ?? body.error ?? 'refused'));
  }
  return new McpToolError(status === 401 ? 'CUSTOS_ERR_UNAUTHENTICATED' : `HTTP_${status}`, `refused (${status})`);
}
