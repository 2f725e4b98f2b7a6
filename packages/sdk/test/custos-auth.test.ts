import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Custos, custosAuth, type Task, type VerifiedTask } from '../src/index.js';
import { bootstrapToken, type ListeningServer, setUpAgentRole, startListeningServer } from './sdk-test-server.js';

declare module 'fastify' {
  interface FastifyRequest {
    custosTask: VerifiedTask | null;
  }
}

/** What a resource server answered. */
interface Answer {
  status: number;
  challenge: string | null;
  cacheControl: string | null;
  body: Record<string, unknown>;
}

const call = async (url: string, authorization?: string): Promise<Answer> => {
  const response = await fetch(url, { headers: authorization ? { authorization } : {} });
  return {
    status: response.status,
    challenge: response.headers.get('www-authenticate'),
    cacheControl: response.headers.get('cache-control'),
    body: (await response.json()) as Record<string, unknown>,
  };
};

/** A GET with the path exactly as given. */
const rawGet = (base: string, path: string, authorization: string) =>
  new Promise<{ status: number; challenge: string | undefined }>((resolve, reject) => {
    const url = new URL(base);
    const req = httpRequest({ host: url.hostname, port: url.port, path, headers: { authorization } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, challenge: res.headers['www-authenticate'] }));
    });
    req.on('error', reject);
    req.end();
  });

describe('custosAuth: a resource server accepts custos task tokens offline', () => {
  let s: ListeningServer;
  let agent: Task;
  let narrow: Task;
  let boundToken: string;
  let fastify: FastifyInstance;
  let fastifyUrl: string;
  let plain: Server;
  let plainUrl: string;

  beforeAll(async () => {
    s = await startListeningServer();
    await setUpAgentRole(s);
    await setUpAgentRole(s, 'bound-agent', { require_dpop: true });
    const custos = new Custos({ address: s.address });
    agent = await custos.loginWithBootstrap(await bootstrapToken(s), { scope: 'read:kv/team/* delegate:sys/tasks/*' });
    narrow = await agent.delegate({ scope: 'read:kv/team/db', ttl: '2m' });
    const bound = await fetch(`${s.address}/v1/auth/bootstrap/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: await bootstrapToken(s, 'bound-agent'), dpop_jkt: 'N'.repeat(43) }),
    });
    boundToken = ((await bound.json()) as { token: string }).token;

    const options = {
      issuer: s.node.services().issuer,
      jwksUrl: `${s.address}/.well-known/jwks.json`,
      // The scope a request needs follows its path: GET /secrets/<path> needs read:<path>.
      requiredScope: (request: { url?: string }) => `read:${(request.url ?? '').replace(/^\/secrets\//, '')}`,
    };

    fastify = Fastify();
    await fastify.register(custosAuth(options));
    fastify.get('/secrets/*', async (request) => ({
      task: request.custosTask?.task_id,
      role: request.custosTask?.role,
    }));
    await fastify.listen({ host: '127.0.0.1', port: 0 });
    fastifyUrl = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;

    // Express/Connect style: (req, res, next), on a plain node:http server.
    const auth = custosAuth(options);
    plain = createServer((request: IncomingMessage, response: ServerResponse) => {
      auth(request, response, (error?: unknown) => {
        response.setHeader('content-type', 'application/json');
        if (error) {
          response.statusCode = 500;
          response.end(JSON.stringify({ error: String(error) }));
          return;
        }
        response.end(JSON.stringify({ task: request.custosTask?.task_id, role: request.custosTask?.role }));
      });
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await fastify?.close();
    await new Promise<void>((resolve) => (plain ? plain.close(() => resolve()) : resolve()));
    await agent?.end();
    await s?.close();
  });

  for (const [name, base] of [
    ['fastify plugin', () => fastifyUrl],
    ['Express-style handler', () => plainUrl],
  ] as const) {
    describe(name, () => {
      it('puts the verified task on the request for a token whose scope covers the path', async () => {
        const answer = await call(`${base()}/secrets/kv/team/db`, `Bearer ${narrow.token}`);
        expect(answer).toMatchObject({ status: 200, body: { task: narrow.id, role: 'agent' } });
        const parent = await call(`${base()}/secrets/kv/team/other`, `bearer ${agent.token}`);
        expect(parent).toMatchObject({ status: 200, body: { task: agent.id } });
      });

      it('answers 401 with a Bearer challenge without a token, and invalid_token for a bad one', async () => {
        const none = await call(`${base()}/secrets/kv/team/db`);
        expect(none).toMatchObject({ status: 401, challenge: 'Bearer realm="custos"', cacheControl: 'no-store' });
        expect(none.body).toEqual({
          error: {
            code: 'CUSTOS_ERR_UNAUTHENTICATED',
            message: 'Authentication is required or the token is not valid.',
          },
        });
        const [h, p, sig] = narrow.token.split('.') as [string, string, string];
        const tampered = `${h}.${p.slice(0, -2)}${p.slice(-2) === 'AA' ? 'AB' : 'AA'}.${sig}`;
        for (const bad of [`Bearer ${tampered}`, 'Bearer not-a-token', 'Basic dXNlcjpwYXNz']) {
          const answer = await call(`${base()}/secrets/kv/team/db`, bad);
          expect(answer.status, bad).toBe(401);
          expect(answer.challenge).toMatch(/^Bearer realm="custos", error="invalid_token"/);
          expect(JSON.stringify(answer.body)).not.toContain(tampered);
        }
      });

      it('answers 403 insufficient_scope, naming the scope required, for a valid token that does not cover the path', async () => {
        const answer = await call(`${base()}/secrets/kv/team/other`, `Bearer ${narrow.token}`);
        expect(answer).toMatchObject({
          status: 403,
          challenge: 'Bearer realm="custos", error="insufficient_scope", scope="read:kv/team/other"',
          body: { error: { code: 'CUSTOS_ERR_PERMISSION_DENIED' } },
        });
      });

      it('refuses, as 403, a request whose path makes no valid scope, and never echoes an unquotable one', async () => {
        const doubled = await call(`${base()}/secrets/kv/team//x`, `Bearer ${agent.token}`);
        expect(doubled).toMatchObject({
          status: 403,
          challenge: 'Bearer realm="custos", error="insufficient_scope"',
          body: { error: { code: 'CUSTOS_ERR_PERMISSION_DENIED' } },
        });
        // Sent raw (fetch would percent-encode the quote): a valid scope, but not one a header can quote.
        const quoted = await rawGet(base(), '/secrets/kv/other/a"b', `Bearer ${agent.token}`);
        expect(quoted).toEqual({ status: 403, challenge: 'Bearer realm="custos", error="insufficient_scope"' });
      });

      it('refuses a DPoP-bound token, as Bearer or under the DPoP scheme: it is never taken as a bearer token', async () => {
        for (const authorization of [`Bearer ${boundToken}`, `DPoP ${boundToken}`]) {
          const answer = await call(`${base()}/secrets/kv/team/db`, authorization);
          expect(answer.status, authorization.slice(0, 5)).toBe(401);
          expect(answer.challenge).toMatch(/error="invalid_token"/);
        }
      });
    });
  }
});
