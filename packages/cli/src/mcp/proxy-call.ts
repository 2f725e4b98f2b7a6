import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { McpToolError } from './mcp-errors.js';

/** The most of an upstream's answer handed to the model: a model's context is small, and a huge body is a cost. */
export const MAX_RESULT_BYTES = 64 * 1024;
const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
// Printable ASCII without spaces: no CR/LF (header injection), no raw bytes. `..` is passed on as
// written: the proxy resolves the path against the upstream's base and refuses an escape itself.
const PATH = /^\/[\x21-\x7e]*$/;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
// Headers the caller may not set: the proxy authenticates the task by Authorization and injects the
// upstream's credential itself; the rest are framing, which node sets from the body.
const RESERVED = new Set([
  'authorization',
  'proxy-authorization',
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'keep-alive',
  'expect',
]);
// The response headers the model sees: enough to interpret the body, and custos's request id (it names
// the audit event). Cookies and anything else are left out.
const SHOWN = ['content-type', 'location', 'retry-after', 'x-request-id', 'x-custos-request-id'];

export interface UpstreamCall {
  readonly upstream: string;
  readonly method: string;
  readonly path: string;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface UpstreamResult {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly truncated: boolean;
}

/** Checks a call's arguments before anything is sent. */
export function checkCall(call: UpstreamCall): void {
  if (!NAME.test(call.upstream)) throw new McpToolError('CUSTOS_ERR_VALIDATION', 'upstream: a custos upstream name');
  if (!METHODS.has(call.method)) {
    throw new McpToolError('CUSTOS_ERR_VALIDATION', `method: one of ${[...METHODS].join(', ')}`);
  }
  if (!PATH.test(call.path) || call.path.length > 4096) {
    throw new McpToolError('CUSTOS_ERR_VALIDATION', 'path: starts with /, printable ASCII, no spaces');
  }
  for (const [name, value] of Object.entries(call.headers ?? {})) {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(name) || RESERVED.has(name.toLowerCase())) {
      throw new McpToolError('CUSTOS_ERR_VALIDATION', `headers: ${name.slice(0, 64)} may not be set`);
    }
    if (typeof value !== 'string' || /[\r\n\0]/.test(value) || value.length > 8192) {
      throw new McpToolError('CUSTOS_ERR_VALIDATION', `headers: the value of ${name} is not a one-line string`);
    }
  }
}

/**
 * Sends the call through custos's credential proxy in base-URL mode
 * (`PROXY/u/NAME/PATH`), authenticated by the acting task's token. The
 * proxy authorises `use` on `upstream/NAME`, attaches the credential, audits
 * the call and redacts the answer; the token goes to the proxy only.
 *
 * node:http, not fetch: fetch would resolve `..` in the path before the
 * proxy sees it, and the proxy is the one that must refuse it.
 */
export function callThroughProxy(
  proxyAddress: string,
  token: string,
  call: UpstreamCall,
  timeoutMs: number,
): Promise<UpstreamResult> {
  const base = new URL(proxyAddress);
  const send = base.protocol === 'https:' ? httpsRequest : httpRequest;
  const body = call.body === undefined ? undefined : Buffer.from(call.body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = send(
      {
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port,
        method: call.method,
        path: `${base.pathname.replace(/\/+$/, '')}/u/${call.upstream}${call.path}`,
        headers: {
          ...call.headers,
          authorization: `Bearer ${token}`,
          ...(body ? { 'content-length': String(body.length) } : {}),
        },
        ...(timeoutMs > 0 ? { timeout: timeoutMs } : {}),
      },
      (res) => (res.headers[PROXY_ERROR_HEADER] !== undefined ? proxyRefusal(res) : collect(res)).then(resolve, reject),
    );
    req.on('timeout', () => req.destroy(new McpToolError('CUSTOS_ERR_TIMEOUT', 'the proxy did not answer in time')));
    req.on('error', (error) =>
      reject(
        error instanceof McpToolError
          ? error
          : new McpToolError('CUSTOS_ERR_UNREACHABLE', `the credential proxy does not answer at ${base.origin}`),
      ),
    );
    req.end(body);
  });
}

/**
 * Set by the proxy on its own refusals only, never passed on from an
 * upstream: what custos refused (no token, no `use`, a path or method not
 * allowed, a dead task) is a tool error with its code, which the model can
 * act on; what an upstream answered, any status, is a result.
 */
const PROXY_ERROR_HEADER = 'x-custos-proxy-error';

/** The proxy's refusal as a tool error: its code, and the message from its JSON body (small; read up to 8 KiB). */
async function proxyRefusal(res: IncomingMessage): Promise<never> {
  const code = String(res.headers[PROXY_ERROR_HEADER]);
  let text = '';
  for await (const chunk of res) {
    text += chunk;
    if (text.length > 8192) break;
  }
  let message = `refused (${res.statusCode})`;
  try {
    message = String((JSON.parse(text) as { error?: { message?: unknown } }).error?.message ?? message);
  } catch {
    // The code is the header's; the message stays generic.
  }
  throw new McpToolError(/^CUSTOS_ERR_[A-Z_]{1,64}$/.test(code) ? code : 'CUSTOS_ERR_UPSTREAM_FAILED', message);
}

/** Reads at most MAX_RESULT_BYTES of the (already redacted) answer, then stops reading. */
function collect(res: IncomingMessage): Promise<UpstreamResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    const headers: Record<string, string> = {};
    for (const name of SHOWN) {
      const value = res.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const finish = () =>
      resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8'), truncated });
    res.on('data', (chunk: Buffer) => {
      if (truncated) return;
      const room = MAX_RESULT_BYTES - size;
      chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      size += Math.min(chunk.length, room);
      if (chunk.length > room) {
        truncated = true;
        res.destroy(); // the rest is not read: an endless body costs nothing more
        finish();
      }
    });
    res.on('end', finish);
    res.on('error', (error) => {
      if (!truncated) reject(new McpToolError('CUSTOS_ERR_UPSTREAM_FAILED', `the answer was cut: ${error.message}`));
    });
  });
}
