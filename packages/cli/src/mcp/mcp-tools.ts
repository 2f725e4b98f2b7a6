import { McpToolError } from './mcp-errors.js';
import type { McpSession } from './mcp-session.js';
import { callThroughProxy, checkCall } from './proxy-call.js';

const handleProperty = {
  type: 'string',
  description: 'act as a child delegated by the delegate tool (its handle); omit to act as this task',
} as const;

/** The tools, as MCP lists them (JSON Schema input). */
export const TOOLS = [
  {
    name: 'whoami',
    description: 'The custos task this agent acts as: task id, role, scope, expiry, delegation chain. Never the token.',
    inputSchema: { type: 'object', properties: { handle: handleProperty }, additionalProperties: false },
  },
  {
    name: 'list_upstreams',
    description:
      'The upstream APIs this task may call through custos (from its scope use:upstream/NAME), with their proxy base URL and, where the task may read it, their configuration (never a credential).',
    inputSchema: { type: 'object', properties: { handle: handleProperty }, additionalProperties: false },
  },
  {
    name: 'call_upstream',
    description:
      'Calls an upstream API through the custos credential proxy: custos attaches the credential, audits the call and redacts the answer. The body is capped at 64 KiB.',
    inputSchema: {
      type: 'object',
      properties: {
        upstream: { type: 'string', description: 'the upstream name (list_upstreams)' },
        method: { type: 'string', description: 'GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS' },
        path: { type: 'string', description: 'path under the upstream base URL, with query: /v1/models?limit=5' },
        body: { type: 'string', description: 'request body text' },
        headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'extra request headers' },
        handle: handleProperty,
      },
      required: ['upstream', 'method', 'path'],
      additionalProperties: false,
    },
  },
  {
    name: 'delegate',
    description:
      'Delegates a narrower child task (RFC 8693 token exchange) for a sub-agent. Returns a handle to pass as `handle` to the other tools, never a token.',
    inputSchema: {
      type: 'object',
      properties: {
        scope: { type: 'string', description: 'space-separated ACTION:PATH entries, within this task’s scope' },
        ttl: { type: 'string', description: 'lifetime (2m, 1h), at most what is left of this task' },
        handle: handleProperty,
      },
      required: ['scope'],
      additionalProperties: false,
    },
  },
  {
    name: 'request_access',
    description:
      'Asks a human for access beyond this task’s scope (just-in-time elevation): the scope, why, for how long. Approved, the task’s own token gains it until the TTL or the task’s end. With wait, holds until decided (at most 5m). Never a token in the answer.',
    inputSchema: {
      type: 'object',
      properties: {
        scope: {
          type: 'string',
          description: 'ACTION:PATH entries within the role’s request ceiling, e.g. read:kv/finance/ledger',
        },
        reason: { type: 'string', description: 'why the task needs it (shown to the approvers)' },
        ttl: { type: 'string', description: 'how long once approved (10m default), never beyond the task' },
        children: { type: 'boolean', description: 'also for the children this task delegates, if the approver agrees' },
        wait: {
          type: 'string',
          description: 'wait this long for the decision (e.g. 2m, at most 5m); omit to return at once',
        },
        handle: handleProperty,
      },
      required: ['scope', 'reason'],
      additionalProperties: false,
    },
  },
] as const;

type Args = Record<string, unknown>;

/** Runs tool `name`; throws McpToolError for every refusal. */
export async function runTool(session: McpSession, name: string, args: Args): Promise<unknown> {
  const tool = TOOLS.find((t) => t.name === name);
  if (!tool) throw new McpToolError('CUSTOS_ERR_VALIDATION', `no tool ${String(name).slice(0, 64)}`);
  checkArgs(tool.inputSchema, args);
  const token = session.token(optionalString(args, 'handle'));
  // Every tool first asks custos whether the acting task is still live: a revoked, ended or expired
  // task (or one under a revoked ancestor) loses every tool at once, even those custos is not asked about.
  const task = await session.calls.introspect(token);
  switch (name) {
    case 'whoami':
      return task;
    case 'list_upstreams':
      return listUpstreams(session, token, task.scope);
    case 'call_upstream': {
      const call = {
        upstream: String(args.upstream),
        method: String(args.method).toUpperCase(),
        path: String(args.path),
        ...(args.body !== undefined ? { body: String(args.body) } : {}),
        ...(args.headers !== undefined ? { headers: args.headers as Record<string, string> } : {}),
      };
      checkCall(call);
      return callThroughProxy(session.proxyAddress, token, call, session.calls.timeoutMs);
    }
    case 'request_access':
      return requestAccess(session, token, args);
    default: {
      const child = await session.calls.delegate(token, String(args.scope), optionalString(args, 'ttl'));
      return {
        handle: session.keep(child),
        task_id: child.taskId,
        scope: child.scope,
        expire_time: child.expireTime,
        parent_task_id: task.task_id,
      };
    }
  }
}

/** Longest a request_access call holds for a decision: a model's tool call should not hang longer. */
const MAX_WAIT_SECONDS = 300;

/**
 * Files the request for the acting task and, with `wait`, holds until a
 * human decided (the server's long poll, asked again every 30 s). The answer
 * is the request as custos shows it: status, scope, expiry — never a token;
 * an approval needs no new token, the task's own now carries the elevation.
 */
async function requestAccess(session: McpSession, token: string, args: Args) {
  let waitSeconds = 0;
  if (args.wait !== undefined) {
    const match = /^(\d{1,4})(s|m)?$/.exec(String(args.wait));
    if (!match) throw new McpToolError('CUSTOS_ERR_VALIDATION', 'wait: a duration such as 90s or 2m');
    waitSeconds = Math.min(Number(match[1]) * (match[2] === 'm' ? 60 : 1), MAX_WAIT_SECONDS);
  }
  let request = await session.calls.requestAccess(token, {
    scope: String(args.scope),
    reason: String(args.reason),
    ...(args.ttl !== undefined ? { ttl: String(args.ttl) } : {}),
    ...(args.children !== undefined ? { children: args.children === true } : {}),
  });
  const deadline = Date.now() + waitSeconds * 1000;
  while (request.status === 'pending' && Date.now() < deadline) {
    const hold = Math.max(1, Math.min(30, Math.ceil((deadline - Date.now()) / 1000)));
    request = await session.calls.awaitRequest(token, String(request.id), hold);
  }
  return request;
}

/** Upstreams named by the scope; a wildcard (`use:upstream/*`) cannot be listed from the scope alone. */
async function listUpstreams(session: McpSession, token: string, scope: string) {
  const names: string[] = [];
  const patterns: string[] = [];
  for (const entry of scope.split(/\s+/)) {
    if (!entry.startsWith('use:upstream/')) continue;
    const path = entry.slice('use:upstream/'.length);
    if (path.endsWith('*')) patterns.push(`upstream/${path}`);
    else names.push(path);
  }
  const upstreams = await Promise.all(
    names.map(async (name) => {
      const base_url = `${session.proxyAddress.replace(/\/+$/, '')}/u/${name}`;
      try {
        const config = await session.calls.upstream(token, name);
        // Only what helps a call: the secret reference, injection template and CA stay out.
        return {
          name,
          base_url,
          upstream_url: config.base_url,
          allow_methods: config.allow_methods ?? [],
          allow_paths: config.allow_paths ?? [],
        };
      } catch {
        // A task may use an upstream without being allowed to read its configuration.
        return { name, base_url, configuration: 'not readable by this task' };
      }
    }),
  );
  return {
    upstreams,
    ...(patterns.length ? { patterns } : {}),
    note: 'From this task’s scope (use:upstream/…); custos’s policies decide each call, and the proxy refuses what they do not allow.',
  };
}

function optionalString(args: Args, key: string): string | undefined {
  const value = args[key];
  return value === undefined ? undefined : String(value);
}

/** The arguments against the tool's schema: required present, no unknown keys, strings where strings are due. */
function checkArgs(schema: { properties: Record<string, { type: string }>; required?: readonly string[] }, args: Args) {
  for (const key of schema.required ?? []) {
    if (args[key] === undefined) throw new McpToolError('CUSTOS_ERR_VALIDATION', `${key}: required`);
  }
  for (const [key, value] of Object.entries(args)) {
    const property = schema.properties[key];
    if (!property) throw new McpToolError('CUSTOS_ERR_VALIDATION', `${key.slice(0, 64)}: not an argument of this tool`);
    if (property.type === 'string' && typeof value !== 'string') {
      throw new McpToolError('CUSTOS_ERR_VALIDATION', `${key}: a string`);
    }
    if (property.type === 'boolean' && typeof value !== 'boolean') {
      throw new McpToolError('CUSTOS_ERR_VALIDATION', `${key}: true or false`);
    }
    if (property.type === 'object' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
      throw new McpToolError('CUSTOS_ERR_VALIDATION', `${key}: an object`);
    }
  }
}
