import { createServer, type Server } from 'node:http';
import type { CustosNode } from '@custos/core';
import type { Logger } from 'pino';
import type { NodeHealth } from '../node-health.js';
import { ProxyAgents } from './proxy-agents.js';
import { ProxyAudit } from './proxy-audit.js';
import { ProxyCerts } from './proxy-certs.js';
import { absoluteFormRoute, handleConnect, tunnelRoute } from './proxy-forward.js';
import { handleProxyRequest } from './proxy-handler.js';
import { DEFAULT_PROXY_OPTIONS, type ProxyOptions } from './proxy-options.js';
import { ProxyRedactors } from './proxy-redactor.js';

/**
 * The credential proxy: a second listener of the server, in base-URL mode
 * (`http://127.0.0.1:8421/u/NAME/<path>`) and forward mode
 * (`HTTP(S)_PROXY=http://127.0.0.1:8421`: absolute URLs and intercepted
 * CONNECT tunnels, see proxy-forward.ts) on the same port.
 *
 * Why a folder of the server and not a `packages/proxy`: every step of a
 * proxied call is a step the server already owns — task-token
 * verification with the live-chain check, Cedar authorisation, the barrier
 * (the secret is read at call time), the fail-closed audit log, node health
 * — all on the one unsealed `CustosNode`. A separate package would have to
 * take all of them as dependencies and could only ever run inside the server
 * process anyway; kept here, there is one composition root and one lifecycle
 * (the listener starts with the server and stops before the node closes).
 *
 * Why `node:http` and not fastify: the proxy parses nothing — no JSON body,
 * no routes beyond `/u/NAME/*` — and must stream both bodies untouched,
 * see the request line exactly as sent (`%2e%2e`, absolute URLs) and keep
 * every hook of the API (its body parser, its response rewriting) off the
 * proxied bytes.
 */
export interface ProxyListener {
  server: Server;
  /** `http://HOST:PORT`. */
  address: string;
  close(): Promise<void>;
}

export interface ProxyListenerOptions {
  node: CustosNode;
  host: string;
  port: number;
  logger: Logger;
  health?: NodeHealth;
  options?: Partial<ProxyOptions>;
}

/** Starts the proxy listener. */
export async function startProxyListener(o: ProxyListenerOptions): Promise<ProxyListener> {
  const options = { ...DEFAULT_PROXY_OPTIONS, ...o.options };
  const ctx = {
    node: o.node,
    audit: new ProxyAudit(o.node, o.health),
    redactors: new ProxyRedactors(),
    agents: new ProxyAgents(options.idleTimeoutMs),
    certs: new ProxyCerts(o.node),
    options,
    logger: o.logger,
  };
  const serverOptions = {
    // A caller has this long to send its request head; its body is bounded by size and idle time.
    headersTimeout: 30_000,
    requestTimeout: 0,
    maxHeaderSize: 16 * 1024,
  };
  const failed = (res: import('node:http').ServerResponse) => (error: unknown) => {
    o.logger.error({ err: error }, 'proxy: request failed');
    res.destroy();
  };
  // Base-URL mode (`/u/NAME/…`) and plain-HTTP forward mode (absolute URLs) on the listener itself…
  const server = createServer(serverOptions, (req, res) => {
    const route = req.url?.startsWith('/') ? undefined : absoluteFormRoute;
    handleProxyRequest(ctx, req, res, route).catch(failed(res));
  });
  // …and the requests inside intercepted CONNECT tunnels, fed to a server that never listens.
  const inner = createServer(serverOptions, (req, res) => {
    handleProxyRequest(ctx, req, res, tunnelRoute).catch(failed(res));
  });
  // No socket timeout on the caller's side: it is legitimately silent while
  // the upstream thinks. A caller silent mid-body, or not reading the answer,
  // leaves the upstream connection idle too, and that one is cut after
  // idleTimeoutMs (proxy-handler.ts), which ends the exchange.
  server.timeout = 0;
  inner.timeout = 0;
  server.on('connect', (req, socket, head) => {
    handleConnect(ctx, inner, req, socket, head).catch((error: unknown) => {
      o.logger.error({ err: error }, 'proxy: CONNECT failed');
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    server,
    address: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          ctx.agents.close();
          resolve();
        });
        server.closeIdleConnections();
        // Tunnels are sockets of `inner`, which never listened: close them as the outer ones close.
        inner.closeIdleConnections();
      }),
  };
}
