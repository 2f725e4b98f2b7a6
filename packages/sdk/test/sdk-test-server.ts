import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/test-server.js';

export { auditEvents, fakeSecret } from '../../server/test/test-server.js';

/** A real custos node listening on loopback (SQLite, dev seal), for the SDK to talk to over HTTP. */
export interface ListeningServer extends TestServer {
  /** `http://127.0.0.1:PORT` */
  address: string;
}

export async function startListeningServer(
  options: Parameters<typeof startTestServer>[1] = {},
): Promise<ListeningServer> {
  const s = await startTestServer('sqlite', options);
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = s.app.server.address() as AddressInfo;
  return Object.assign(s, { address: `http://127.0.0.1:${port}` }) as ListeningServer;
}

/** As an operator: writes a policy and a role for agents (bootstrap logins) that may read `kv/team/` and delegate. */
export async function setUpAgentRole(
  s: TestServer,
  role = 'agent',
  extra: Record<string, unknown> = {},
): Promise<void> {
  const policy = await s.call({
    method: 'PUT',
    url: `/v1/policies/${role}-policy`,
    payload: {
      policy:
        'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/team/");\n' +
        'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"pg-main/");\n' +
        'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
    },
  });
  expect(policy.statusCode, policy.body).toBe(200);
  const written = await s.call({
    method: 'PUT',
    url: `/v1/roles/${role}`,
    payload: { policies: [`${role}-policy`], max_ttl: '15m', max_depth: 3, auth: ['bootstrap'], ...extra },
  });
  expect(written.statusCode, written.body).toBe(200);
}

/** A fresh single-use bootstrap token for `role`. */
export async function bootstrapToken(s: TestServer, role = 'agent'): Promise<string> {
  const created = await s.call({ method: 'POST', url: `/v1/roles/${role}/bootstrap`, payload: { ttl: '5m' } });
  expect(created.statusCode).toBe(200);
  return created.json().token as string;
}

/**
 * A plain HTTP relay in front of a server that counts the requests passing
 * through and can run a hook on each: the tests see how many attempts the
 * SDK really made, on the wire.
 */
export async function startCountingRelay(
  target: string,
  onRequest: (request: IncomingMessage, count: number) => Promise<void> | void = () => undefined,
): Promise<{ address: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const upstream = new URL(target);
  const server: Server = createServer(async (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    await onRequest(req, requests.length);
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
