import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CustosNodeOptions } from '@custos/core';
import pino from 'pino';
import { expect } from 'vitest';
import { type ProxyListener, type ProxyOptions, startProxyListener } from '../../src/proxy/index.js';
import { auditEvents, fakeSecret, startTestServer, type TestServer } from '../test-server.js';

/** A loopback HTTP server a test controls: every request is counted and handed to `handle`. */
export interface FakeUpstream {
  server: Server;
  port: number;
  /** Every request received: method, raw URL, headers. */
  seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }>;
  close(): Promise<void>;
}

export async function fakeUpstream(
  handle: (req: IncomingMessage, res: ServerResponse, body: string) => void,
  host = '127.0.0.1',
): Promise<FakeUpstream> {
  const seen: FakeUpstream['seen'] = [];
  const server = createServer((req, res) => {
    // Streaming routes answer before the body has arrived; the rest see it whole.
    if (req.url?.includes('/stream/')) {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' });
      handle(req, res, '');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handle(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A custos node with no global loopback allowance (upstreams allow their own host), and its proxy listener. */
export interface ProxyHarness {
  s: TestServer;
  proxy: ProxyListener;
  /** The proxy's port (for raw requests). */
  proxyPort(): number;
  /** The secret value injected (fake, fresh per run). */
  key: string;
  /** A root task's token whose scope is `scope`. */
  task(scope?: string): Promise<{ token: string; task_id: string }>;
  /** A child of `parent` with `scope`. */
  delegate(parent: string, scope: string): Promise<{ token: string; task_id: string }>;
  /** `fetch` to the proxy. */
  call(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  /** Audit events of the proxy, both modes (`details.proxy`). */
  proxyEvents(): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export async function startProxyHarness(
  options: Partial<ProxyOptions> = {},
  /** Receives every log line the proxy writes (JSON), to check no secret is in them. */
  logLines: string[] = [],
  /** Audit to the database only (no file sink that could acknowledge alone), to make it fail. */
  databaseAuditOnly = false,
  /** The anomaly engine's configuration (default: every rule with its defaults). */
  anomaly?: CustosNodeOptions['anomaly'],
): Promise<ProxyHarness> {
  // No global allow entry: a loopback upstream is reachable only through its own allow_hosts.
  const s = await startTestServer('sqlite', {
    egress: { allow: [] },
    ...(databaseAuditOnly ? { audit: {} } : {}),
    ...(anomaly ? { anomaly } : {}),
  });
  const proxy = await startProxyListener({
    node: s.node,
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) }),
    options,
  });
  const key = fakeSecret('upstream-key');
  const ok = async (r: Awaited<ReturnType<TestServer['call']>>) => {
    expect(r.statusCode, r.body).toBeLessThan(300);
    return r;
  };
  await ok(await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/llm/fake', payload: { data: { api_key: key } } }));
  await ok(
    await s.call({
      method: 'PUT',
      url: '/v1/policies/agent',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"use", resource in Custos::Path::"upstream/");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    }),
  );
  await ok(
    await s.call({
      method: 'PUT',
      url: '/v1/roles/agent',
      payload: { policies: ['agent'], max_ttl: '15m', max_depth: 3 },
    }),
  );
  return {
    s,
    proxy,
    proxyPort: () => (proxy.server.address() as AddressInfo).port,
    key,
    task: async (scope = 'use:upstream/* delegate:sys/tasks/*') => {
      const r = await ok(
        await s.call({ method: 'POST', url: '/v1/roles/agent/tasks', payload: { ttl: '10m', scope } }),
      );
      return r.json() as { token: string; task_id: string };
    },
    delegate: async (parent, scope) => {
      const r = await ok(
        await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: parent, payload: { ttl: '5m', scope } }),
      );
      return r.json() as { token: string; task_id: string };
    },
    call: (path, { token, headers, ...init } = {}) => {
      return fetch(`${proxy.address}${path}`, {
        ...init,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(headers as Record<string, string>) },
      });
    },
    proxyEvents: async () =>
      (await auditEvents(s.storage)).filter((e) => (e.details as { proxy?: string } | undefined)?.proxy !== undefined),
    close: async () => {
      await proxy.close();
      await s.close();
    },
  };
}

/** Adds an upstream as an operator would (root token); fails the test unless stored. */
export async function addUpstream(h: ProxyHarness, name: string, body: Record<string, unknown>): Promise<void> {
  const r = await h.s.call({
    method: 'PUT',
    url: `/v1/upstreams/${name}`,
    payload: { secret: 'kv/llm/fake#api_key', ...body },
  });
  expect(r.statusCode, r.body).toBe(200);
}

/**
 * Reads a text stream until `received` (what was read before, passed back
 * in) contains `marker`, failing if the stream ends first. For streaming
 * tests that hold the next event back until the previous one arrived.
 */
export async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  received: string,
  marker: string,
): Promise<string> {
  let text = received;
  while (!text.includes(marker)) {
    const { value, done } = await reader.read();
    expect(done, `the stream ended before ${marker}`).toBe(false);
    text += value;
  }
  return text;
}

/** An echoing handler: the request as the upstream saw it, JSON. */
export function echo(req: IncomingMessage, res: ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
}
