import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CustosCalls } from './custos-calls.js';
import { createMcpServer } from './mcp-server.js';
import { McpSession } from './mcp-session.js';

/** Loopback only: the listener acts as the task, so it is never offered to the network. */
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
/** Enough for a host and a few sub-agents; beyond it a runaway client gets 429, not unbounded memory. */
const MAX_SESSIONS = 32;

export interface McpHttpListener {
  /** `http://HOST:PORT/mcp` */
  readonly url: string;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host);
}

/**
 * MCP's streamable HTTP transport on a loopback port, at `/mcp`. stdio is
 * private to the host that spawned the process; a loopback port is not —
 * every local process and user can connect, and a browser page can try
 * through DNS rebinding. So every request must:
 * - name this listener in `Host` (a rebound name does not) and carry no
 *   foreign `Origin` (a web page would);
 * - carry `Authorization: Bearer` with the very task token this server acts
 *   with (compared in constant time): the listener grants nothing its caller
 *   does not already hold.
 * Each MCP session has its own McpSession, so a handle works only in the
 * session that delegated it, and a session's children end with it.
 */
export async function serveMcpHttp(
  host: string,
  port: number,
  token: string,
  calls: CustosCalls,
  proxyAddress: string,
): Promise<McpHttpListener> {
  const expected = digest(token);
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; session: McpSession }>();
  let authority = '';

  const refuse = (res: ServerResponse, status: number, code: string, message: string) => {
    res.writeHead(status, {
      'content-type': 'application/json',
      ...(status === 401 ? { 'www-authenticate': 'Bearer realm="custos-mcp"' } : {}),
    });
    res.end(JSON.stringify({ error: { code, message } }));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers.host !== authority) {
      return refuse(res, 403, 'CUSTOS_ERR_PERMISSION_DENIED', 'Host does not name this listener');
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${authority}`) {
      return refuse(res, 403, 'CUSTOS_ERR_PERMISSION_DENIED', 'cross-origin requests are refused');
    }
    const auth = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (auth === undefined || !timingSafeEqual(digest(auth), expected)) {
      return refuse(res, 401, 'CUSTOS_ERR_UNAUTHENTICATED', 'Authorization: Bearer with the task token');
    }
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp') {
      return refuse(res, 404, 'CUSTOS_ERR_NOT_FOUND', 'the MCP endpoint is /mcp');
    }
    const id = req.headers['mcp-session-id'];
    const known = typeof id === 'string' ? sessions.get(id) : undefined;
    if (known) return known.transport.handleRequest(req, res);
    if (typeof id === 'string') return refuse(res, 404, 'CUSTOS_ERR_NOT_FOUND', 'no such MCP session');
    if (req.method !== 'POST') return refuse(res, 400, 'CUSTOS_ERR_VALIDATION', 'start a session with initialize');
    if (sessions.size >= MAX_SESSIONS) {
      return refuse(res, 429, 'CUSTOS_ERR_RATE_LIMITED', 'too many MCP sessions on this listener');
    }
    const session = new McpSession(token, calls, proxyAddress);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => {
        sessions.set(sid, { transport, session });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
      void session.close();
    };
    await createMcpServer(session).connect(transport);
    await transport.handleRequest(req, res);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) refuse(res, 500, 'CUSTOS_ERR_INTERNAL', 'the MCP request failed');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  authority = `${host.includes(':') ? `[${host}]` : host}:${bound}`;
  return {
    url: `http://${authority}/mcp`,
    close: async () => {
      await Promise.allSettled([...sessions.values()].map(({ transport }) => transport.close()));
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Fixed-length digests, so the comparison is constant-time whatever the lengths given. */
const digest = (value: string) => createHash('sha256').update(value).digest();
