// Attack class: parser and policy-engine exhaustion through the HTTP API.
// Every input a request can carry into a parser or into Cedar is bounded
// before the parser sees it; a fault inside Cedar's wasm leaves the process
// usable. Each test is named after the promise it keeps. (Storage plays no
// part here, so one backend is enough.)
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { POLICY_TEXT_LIMITS, TASK_LIST_SCAN } from '@custos/core';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../src/app.js';
import { auditEvents, fakeSecret, startTestServer, type TestServer } from '../test-server.js';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ISSUER = 'https://issuer.exhaustion.example.test';
const MARKER = 'fake-policy-marker-c3d9';
const W = (body: string) => `permit(principal, action, resource) when { ${body} };`;
const chain = (term: string, sep: string, n: number) => Array.from({ length: n }, () => term).join(sep);

/** Policies that trapped Cedar's wasm (parser at write, or evaluator on first use) before the bounds. */
const DEEP_POLICIES: Record<string, string> = {
  parentheses: W(`${'('.repeat(400)}"${MARKER}" == ""${')'.repeat(400)}`),
  negations: W(`${'!('.repeat(300)}true${')'.repeat(300)}`),
  'unary minus': W(`${'-('.repeat(300)}context.depth${')'.repeat(300)} == 0`),
  sets: W(`${'['.repeat(300)}1${']'.repeat(300)} == [1]`),
  records: W(`${'{a: '.repeat(300)}1${'}'.repeat(300)} == {a: 1}`),
  '&& chain': W(chain('context.depth == 0', ' && ', 400)),
  '|| chain': W(chain('context.depth == 1', ' || ', 400)),
  '.contains chain': W(chain('context.task_chain.contains("x")', ' || ', 400)),
  'unless clauses': `permit(principal, action, resource)${' unless { false }'.repeat(400)};`,
  // Cedar ends a `//` comment at a carriage return as well as a line feed:
  // a scan that ran the comment on to the next line feed measured nothing.
  'parentheses after a comment ended by CR': `// x\r${W(`${'('.repeat(400)}"${MARKER}" == ""${')'.repeat(400)}`)}`,
  '&& chain after a comment ended by CR': `// x\r${W(chain('context.depth == 0', ' && ', 200))}`,
  '20 parentheses after a comment ended by CR': `// x\r${W(`${'('.repeat(20)}true${')'.repeat(20)}`)}`,
};

/**
 * Traps the Cedar instance the server uses, from outside custos, as a bug in
 * Cedar might. A call that overflows V8's stack rather than Cedar's own may
 * leave the module limping rather than dead; each abandoned call leaves less
 * of its stack, so a few rounds always finish it.
 */
function trapCedarRuntime(): void {
  const raw = createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as {
    policySetTextToParts(text: string): unknown;
  };
  for (let round = 0; round < 100; round++) {
    try {
      raw.policySetTextToParts(DEEP_POLICIES.records as string);
    } catch {
      // The trap.
    }
    try {
      raw.policySetTextToParts('permit(principal, action, resource);');
    } catch {
      return;
    }
  }
  throw new Error('expected the raw Cedar runtime to be trapped');
}

describe('exhaustion: parsers and the policy engine', () => {
  let s: TestServer;
  let reader: string;
  let taskToken: string;
  let signingKey: CryptoKey;

  const put = (name: string, policy: string) =>
    s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy } });
  /** A decision Cedar must evaluate (a path not asked before, so no memo answers it). */
  let n = 0;
  const read = (token = reader) => s.call({ method: 'GET', url: `/v1/secrets/data/kv/app/k${n++}`, token });
  const expectAuthorisationWorks = async () => {
    expect((await read()).statusCode).toBe(404); // allowed, nothing stored there
    expect((await s.call({ method: 'GET', url: '/v1/secrets/data/kv/other/x', token: reader })).statusCode).toBe(403);
    const again = await put(`p-${n++}`, 'permit(principal, action == Custos::Action::"list", resource);');
    expect(again.statusCode).toBe(200);
  };

  beforeAll(async () => {
    s = await startTestServer('sqlite');
    expect((await put('app-read', 'permit(principal, action, resource in Custos::Path::"kv/app/");')).statusCode).toBe(
      200,
    );
    expect(
      (
        await put(
          'delegator',
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
        )
      ).statusCode,
    ).toBe(200);
    reader = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['app-read'], ttl: '1h' } })
    ).json().token;
    expect(
      (
        await s.call({
          method: 'PUT',
          url: '/v1/roles/agent',
          payload: {
            policies: ['app-read', 'delegator'],
            auth: ['jwt', 'bootstrap'],
            bound_claims: { sub: 'repo:acme/*' },
            jwt_methods: ['ci'],
            max_ttl: '1h',
          },
        })
      ).statusCode,
    ).toBe(200);
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    signingKey = privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    expect(
      (
        await s.call({
          method: 'PUT',
          url: '/v1/auth/jwt/methods/ci',
          payload: { issuer: ISSUER, audience: 'custos', jwks: { keys: [jwk] } },
        })
      ).statusCode,
    ).toBe(200);
    const started = await s.call({
      method: 'POST',
      url: '/v1/roles/agent/tasks',
      payload: { ttl: '30m', scope: 'read:kv/app/* delegate:sys/tasks/*' },
    });
    expect(started.statusCode).toBe(200);
    taskToken = started.json().token;
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('policies', () => {
    it.each(Object.keys(DEEP_POLICIES))(
      'a deeply nested policy (%s) is refused and authorisation keeps working',
      async (kind) => {
        const response = await put('deep', DEEP_POLICIES[kind] as string);
        expect(response.statusCode).toBe(400);
        expect(response.json().error.code).toBe('CUSTOS_ERR_INVALID_POLICY');
        // Refused by the bounds, before Cedar saw it — not by a fault Cedar was made to take.
        expect(response.json().error.message).toMatch(/brackets nested more than 16 deep|nested more than 40 levels/);
        expect(response.body).not.toContain(MARKER);
        expect((await s.call({ method: 'GET', url: '/v1/policies/deep' })).statusCode).toBe(404);
        await expectAuthorisationWorks();
      },
    );

    it('a policy larger than the size bound is refused, counted in bytes', async () => {
      const text = W(`context.task_chain.contains("${'€'.repeat(30_000)}")`);
      const response = await put('huge', text);
      expect(response.statusCode).toBe(400);
      expect(response.json().error).toMatchObject({ code: 'CUSTOS_ERR_INVALID_POLICY' });
      expect(response.json().error.message).toMatch(/larger than 65536 bytes/);
      await expectAuthorisationWorks();
    });

    it.each([
      ['line feeds', '', '\n'],
      ['carriage returns, after a comment', '// x\r', '\r'],
      ['Unicode line separators', '', '\u2028'],
    ])('a policy with more statements than the bound is refused (separated by %s)', async (_, lead, sep) => {
      const response = await put('many', `${lead}${'permit(principal, action, resource);'.concat(sep).repeat(257)}`);
      expect(response.statusCode).toBe(400);
      expect(response.json().error.message).toMatch(/more than 256 statements/);
      expect((await s.call({ method: 'GET', url: '/v1/policies/many' })).statusCode).toBe(404);
    });

    it('the most expensive policy the bounds admit is accepted, and decisions on it still answer', async () => {
      // 64 KiB of statements that all apply, each a chain at the depth bound:
      // the most Cedar can be made to evaluate per decision through one policy.
      const statement = `permit(principal, action, resource in Custos::Path::"kv/costly/") when { ${chain('context.depth == 0', ' && ', 34)} };\n`;
      const count = Math.min(
        POLICY_TEXT_LIMITS.maxStatements,
        Math.floor(POLICY_TEXT_LIMITS.maxBytes / statement.length),
      );
      expect((await put('costly', statement.repeat(count))).statusCode).toBe(200);
      const token = (
        await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['costly'], ttl: '1h' } })
      ).json().token;
      for (let i = 0; i < 5; i++) {
        expect((await s.call({ method: 'GET', url: `/v1/secrets/data/kv/costly/k${i}`, token })).statusCode).toBe(404);
      }
      expect((await s.call({ method: 'GET', url: '/v1/secrets/data/kv/other/k', token })).statusCode).toBe(403);
    });

    it('a trapped Cedar runtime is rebuilt: the next decision is answered, and later writes and decisions work', async () => {
      trapCedarRuntime();
      expect((await read()).statusCode).toBe(404);
      await expectAuthorisationWorks();
    });

    it('a rebuild of the Cedar runtime is logged, without policy text', async () => {
      const lines: string[] = [];
      const app = await buildApp({
        node: s.node,
        logger: { level: 'info', stream: { write: (l: string) => lines.push(l) } },
      });
      try {
        trapCedarRuntime();
        const response = await app.inject({
          method: 'GET',
          url: `/v1/secrets/data/kv/app/k${n++}`,
          headers: { authorization: `Bearer ${reader}` },
        });
        expect(response.statusCode).toBe(404);
        const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.cedar !== undefined);
        expect(logged).toEqual([
          expect.objectContaining({
            msg: 'policy engine runtime rebuilt',
            cedar: expect.objectContaining({ operation: 'statefulIsAuthorized' }),
          }),
        ]);
        expect(lines.join('\n')).not.toContain(MARKER);
      } finally {
        await app.close();
      }
    });
  });

  describe('listing tasks', () => {
    it('an operator’s task listing makes at most one page of policy decisions per call, and its cursor reaches every task it may see', async () => {
      const services = s.node.services();
      const role = await services.roles.read('agent');
      const ids: string[] = [];
      for (let i = 0; i < 2 * TASK_LIST_SCAN + 100; i++) {
        ids.push((await services.tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 600_000 })).task.id);
      }
      // It may see two tasks of the thousand: one early, the last.
      const seen = [ids[3] as string, ids.at(-1) as string];
      await put(
        'list-few',
        `permit(principal, action == Custos::Action::"list", resource == Custos::Path::"sys/tasks");\n${seen
          .map(
            (id) => `permit(principal, action == Custos::Action::"read", resource == Custos::Path::"sys/tasks/${id}");`,
          )
          .join('\n')}`,
      );
      const token = (
        await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['list-few'], ttl: '1h' } })
      ).json().token as string;
      const decisions = vi.spyOn(services, 'authorize');
      try {
        const listed: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          decisions.mockClear();
          const query = new URLSearchParams({ limit: String(TASK_LIST_SCAN), ...(cursor ? { cursor } : {}) });
          const page = await s.call({ method: 'GET', url: `/v1/tasks?${query}`, token });
          expect(page.statusCode, page.body).toBe(200);
          // One decision per stored task read, plus the `list` check itself.
          expect(decisions.mock.calls.length).toBeLessThanOrEqual(TASK_LIST_SCAN + 1);
          listed.push(...page.json().tasks.map((t: { id: string }) => t.id));
          cursor = page.json().next_cursor;
          // A cursor names a position without naming a task.
          if (cursor) expect(Buffer.from(cursor, 'base64url').toString('latin1')).not.toMatch(/tsk_/);
          pages++;
        } while (cursor && pages < 10);
        expect(cursor).toBeUndefined();
        expect(pages).toBeGreaterThanOrEqual(3);
        // Pages follow id order, which is not creation order (see TaskService.list).
        expect([...listed].sort()).toEqual([...seen].sort());
      } finally {
        decisions.mockRestore();
      }
      // A page larger than the scan is refused, not silently cut.
      const big = await s.call({ method: 'GET', url: `/v1/tasks?limit=${TASK_LIST_SCAN + 1}`, token });
      expect(big.statusCode).toBe(400);
    }, 120_000);

    it('a task listing its own large subtree gets it a page at a time, and nothing outside it', async () => {
      const children = new Set<string>();
      for (let i = 0; i < TASK_LIST_SCAN + 50; i++) {
        const child = await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: taskToken, payload: {} });
        expect(child.statusCode).toBe(200);
        children.add(child.json().task_id);
      }
      const listed: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const query = new URLSearchParams({ limit: String(TASK_LIST_SCAN), ...(cursor ? { cursor } : {}) });
        const page = await s.call({ method: 'GET', url: `/v1/tasks?${query}`, token: taskToken });
        expect(page.statusCode, page.body).toBe(200);
        expect(page.json().tasks.length).toBeLessThanOrEqual(TASK_LIST_SCAN);
        listed.push(...page.json().tasks.map((t: { id: string }) => t.id));
        cursor = page.json().next_cursor;
        pages++;
      } while (cursor && pages < 10);
      expect(pages).toBe(2);
      // The task itself, then its children; nothing else.
      expect(listed.length).toBe(children.size + 1);
      expect(new Set(listed.slice(1))).toEqual(children);
      // A subtree cursor is no cursor for the operators' listing.
      const first = await s.call({ method: 'GET', url: '/v1/tasks?limit=1', token: taskToken });
      const subtreeCursor = first.json().next_cursor as string;
      const replayed = await s.call({ method: 'GET', url: `/v1/tasks?cursor=${subtreeCursor}` });
      expect(replayed.json().error.code).toBe('CUSTOS_ERR_VALIDATION');
    }, 120_000);

    it('a forged or altered listing cursor is refused', async () => {
      const role = await s.node.services().roles.read('agent');
      for (let i = 0; i < 2; i++) await s.node.services().tasks.start({ role, sub: 'test', via: 'operator' });
      const first = await s.call({ method: 'GET', url: '/v1/tasks?limit=1' });
      const cursor = first.json().next_cursor as string;
      expect(cursor).toEqual(expect.any(String));
      const altered = `${cursor.slice(0, 10)}${cursor[10] === 'A' ? 'B' : 'A'}${cursor.slice(11)}`;
      const forged = Buffer.from(JSON.stringify({ after: 'tsk_' })).toString('base64url');
      for (const bad of [altered, forged, '!!', 'x'.repeat(600)]) {
        const response = await s.call({ method: 'GET', url: `/v1/tasks?cursor=${encodeURIComponent(bad)}` });
        expect(response.statusCode, bad.slice(0, 12)).toBe(400);
        expect(response.json().error.code).toBe('CUSTOS_ERR_VALIDATION');
      }
    });
  });

  describe('request bodies', () => {
    const deepJson = (depth: number) => `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`;

    it.each([
      ['the public token exchange', '/v1/oauth/token', null],
      ['the public JWT login', '/v1/auth/jwt/login', null],
      ['an authenticated secret write', '/v1/secrets/data/kv/app/deep', 'root'],
    ] as const)(
      'a deeply nested JSON body to %s is refused before it is parsed, and the server keeps answering',
      async (_, url, who) => {
        const response = await s.call({
          method: url.includes('secrets') ? 'PUT' : 'POST',
          url,
          ...(who === null ? { token: null } : {}),
          headers: { 'content-type': 'application/json' },
          payload: deepJson(400_000),
        });
        expect(response.statusCode).toBe(400);
        expect(response.json().error?.code ?? response.json().custos_code).toBe('CUSTOS_ERR_BAD_REQUEST');
        expect((await s.call({ method: 'GET', url: '/v1/sys/health', token: null })).statusCode).toBe(200);
        await expectAuthorisationWorks();
      },
    );

    it('JSON nested up to the bound is parsed, one level more is refused', async () => {
      const nested = (depth: number) =>
        `{"data":{"k":"${fakeSecret()}"},"x":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
      const at = await s.call({
        method: 'PUT',
        url: '/v1/secrets/data/kv/app/nested',
        headers: { 'content-type': 'application/json' },
        payload: nested(64),
      });
      // Parsed, then refused by the route's schema (it has no `x`).
      expect(at.json().error.code).toBe('CUSTOS_ERR_VALIDATION');
      const over = await s.call({
        method: 'PUT',
        url: '/v1/secrets/data/kv/app/nested',
        headers: { 'content-type': 'application/json' },
        payload: nested(65),
      });
      expect(over.statusCode).toBe(400);
      expect(over.json().error).toEqual({
        code: 'CUSTOS_ERR_BAD_REQUEST',
        message: 'The request is malformed. JSON nested more than 64 levels',
      });
    });

    it('brackets and escaped quotes inside JSON strings are not taken for nesting', async () => {
      // As JSON text: brackets by the hundred and an escaped quote, all inside one string.
      const value = `${'[{'.repeat(500)}\\"${'}]'.repeat(10)}`;
      const response = await s.call({
        method: 'PUT',
        url: '/v1/secrets/data/kv/app/brackets',
        headers: { 'content-type': 'application/json' },
        payload: `{"data":{"k":"${value}"}}`,
      });
      expect(response.statusCode).toBe(200);
      const read = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/brackets' });
      expect(read.json().data.k).toBe(JSON.parse(`"${value}"`));
    });

    it('a body over the size limit is refused with 413, on public and authenticated routes', async () => {
      const big = JSON.stringify({ jwt: 'x'.repeat(2 * 1024 * 1024), role: 'agent' });
      for (const [url, token] of [
        ['/v1/auth/jwt/login', null],
        ['/v1/secrets/data/kv/app/big', undefined],
      ] as const) {
        const response = await s.call({
          method: url.includes('secrets') ? 'PUT' : 'POST',
          url,
          ...(token === null ? { token: null } : {}),
          headers: { 'content-type': 'application/json' },
          payload: big,
        });
        expect(response.statusCode).toBe(413);
        expect(response.json().error.code).toBe('CUSTOS_ERR_BODY_TOO_LARGE');
      }
    });

    it('a form body over its limit is refused with 413 at the token endpoint', async () => {
      const response = await s.call({
        method: 'POST',
        url: '/v1/oauth/token',
        token: null,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `grant_type=${encodeURIComponent(EXCHANGE)}&subject_token_type=${encodeURIComponent(JWT_TYPE)}&subject_token=${'x'.repeat(100_000)}`,
      });
      expect(response.statusCode).toBe(413);
    });
  });

  describe('JWTs', () => {
    const jwtLogin = (jwt: string) =>
      s.call({ method: 'POST', url: '/v1/auth/jwt/login', token: null, payload: { role: 'agent', jwt } });
    const b64 = (v: string) => Buffer.from(v).toString('base64url');

    it('a JWT over the size bound is refused at login, introspection and token exchange', async () => {
      const huge = `${b64('{"alg":"ES256"}')}.${'A'.repeat(20_000)}.${'B'.repeat(100)}`;
      expect((await jwtLogin(huge)).statusCode).toBe(400);
      const introspect = await s.call({ method: 'POST', url: '/v1/oauth/introspect', payload: { token: huge } });
      expect(introspect.statusCode).toBe(400);
      const exchange = await s.call({
        method: 'POST',
        url: '/v1/oauth/token',
        token: null,
        payload: { grant_type: EXCHANGE, subject_token_type: JWT_TYPE, subject_token: huge },
      });
      expect(exchange.statusCode).toBe(400);
    });

    it.each([
      ['garbage', 'x'.repeat(16_000)],
      ['many dots', '.'.repeat(16_000)],
      ['a deeply nested header', `${b64(`{"alg":"ES256","x":${'['.repeat(5000)}${']'.repeat(5000)}}`)}.e30.AAAA`],
      [
        'a deeply nested payload',
        `${b64('{"alg":"ES256","kid":"k1"}')}.${b64(`{"x":${'['.repeat(5000)}${']'.repeat(5000)}}`)}.AAAA`,
      ],
      ['a non-JSON header', `${b64('\u0000\u0001garbage')}.e30.AAAA`],
    ])(
      'a malformed JWT (%s) is refused without a server error at login, introspection and token exchange',
      async (_, jwt) => {
        const login = await jwtLogin(jwt);
        expect(login.statusCode).toBe(401);
        const introspect = await s.call({
          method: 'POST',
          url: '/v1/oauth/introspect',
          payload: { token: jwt.slice(0, 8192) },
        });
        expect(introspect.statusCode).toBe(200);
        expect(introspect.json()).toEqual({ active: false });
        const exchange = await s.call({
          method: 'POST',
          url: '/v1/oauth/token',
          token: null,
          payload: { grant_type: EXCHANGE, subject_token_type: JWT_TYPE, subject_token: jwt.slice(0, 8192) },
        });
        expect(exchange.statusCode).toBeGreaterThanOrEqual(400);
        expect(exchange.statusCode).toBeLessThan(500);
      },
    );

    it('a validly signed JWT with a deeply nested claim logs in without a server error', async () => {
      // Signed as bytes: jose's claims builder would itself overflow on it.
      const now = Math.floor(Date.now() / 1000);
      const payload = `{"iss":"${ISSUER}","aud":"custos","sub":"repo:acme/deep","iat":${now},"exp":${now + 300},"deep":${'['.repeat(5000)}${']'.repeat(5000)}}`;
      const jwt = await new CompactSign(new TextEncoder().encode(payload))
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .sign(signingKey);
      expect(jwt.length).toBeLessThan(16_384);
      expect((await jwtLogin(jwt)).statusCode).toBe(200);
    });
  });

  describe('identities', () => {
    it('a JWT login whose subject is longer than a task identity may be starts no task, and says why only in the audit event', async () => {
      const now = Math.floor(Date.now() / 1000);
      const sub = `repo:acme/${'x'.repeat(11 * 1024)}`;
      const payload = JSON.stringify({ iss: ISSUER, aud: 'custos', sub, iat: now, exp: now + 300 });
      const jwt = await new CompactSign(new TextEncoder().encode(payload))
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .sign(signingKey);
      expect(jwt.length).toBeLessThan(16_384);
      const jwtTasks = async () => {
        let count = 0;
        let cursor: string | undefined;
        do {
          const page = await s.node.services().tasks.list({ limit: TASK_LIST_SCAN, ...(cursor ? { cursor } : {}) });
          count += page.tasks.filter((t) => t.via === 'jwt').length;
          cursor = page.cursor;
        } while (cursor);
        return count;
      };
      const before = await jwtTasks();
      const login = await s.call({
        method: 'POST',
        url: '/v1/auth/jwt/login',
        token: null,
        payload: { role: 'agent', jwt },
      });
      expect(login.statusCode).toBe(401);
      expect(login.json().error).toEqual({ code: 'CUSTOS_ERR_UNAUTHENTICATED', message: expect.any(String) });
      expect(login.body).not.toMatch(/subject|too_long|xxxx/);
      const event = (await auditEvents(s.storage))
        .filter((e) => (e.request as { route?: string })?.route === '/v1/auth/jwt/login' && e.status === 401)
        .at(-1);
      expect(event?.reason).toBe('subject_too_long');
      expect(JSON.stringify(event)).not.toContain('xxxxxxxx');
      expect(await jwtTasks()).toBe(before);
    });
  });

  describe('headers', () => {
    it('a long Authorization header is refused before it is parsed, and the server keeps answering', async () => {
      // Header size is enforced by the HTTP listener, so this one goes over a socket.
      const app = await buildApp({ node: s.node, logger: false });
      await app.listen({ port: 0, host: '127.0.0.1' });
      try {
        const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
        const long = await fetch(`${base}/v1/secrets/data/kv/app/x`, {
          headers: { authorization: `Bearer ${'x'.repeat(100_000)}` },
        });
        expect(long.status).toBe(431);
        expect((await fetch(`${base}/v1/sys/health`)).status).toBe(200);
        const ok = await fetch(`${base}/v1/secrets/data/kv/app/x`, { headers: { authorization: `Bearer ${reader}` } });
        expect(ok.status).toBe(404);
      } finally {
        await app.close();
      }
    });

    it('a token just under the header limit is refused as unauthenticated, without a server error', async () => {
      for (const headers of [
        { authorization: `Bearer ${'x'.repeat(15_000)}` },
        { authorization: `DPoP ${'x'.repeat(15_000)}` },
        { 'x-custos-token': 'x'.repeat(15_000) },
      ]) {
        const response = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/x', token: null, headers });
        expect(response.statusCode).toBe(401);
      }
    });

    it('a huge DPoP proof header is not a server error', async () => {
      for (const proof of ['x'.repeat(15_000), `${'e30.'.repeat(3000)}x`]) {
        const response = await s.call({
          method: 'GET',
          url: '/v1/secrets/data/kv/app/x',
          token: null,
          headers: { authorization: `DPoP ${taskToken}`, dpop: proof },
        });
        expect(response.statusCode).toBeGreaterThanOrEqual(400);
        expect(response.statusCode).toBeLessThan(500);
      }
    });
  });

  describe('scopes, labels and schedules', () => {
    it('a huge scope string is refused at delegation and token exchange', async () => {
      const scope = chain('read:kv/app/x', ' ', 5000);
      const delegate = await s.call({
        method: 'POST',
        url: '/v1/tasks/delegate',
        token: taskToken,
        payload: { scope },
      });
      expect(delegate.statusCode).toBe(400);
      const exchange = await s.call({
        method: 'POST',
        url: '/v1/oauth/token',
        token: null,
        payload: { grant_type: EXCHANGE, subject_token_type: JWT_TYPE, subject_token: taskToken, scope },
      });
      expect(exchange.statusCode).toBe(400);
    });

    it('a scope with more entries than the bound is refused, within the size bound', async () => {
      const scope = Array.from({ length: 65 }, (_, i) => `read:kv/app/${i}`).join(' ');
      expect(scope.length).toBeLessThan(4096);
      const delegate = await s.call({
        method: 'POST',
        url: '/v1/tasks/delegate',
        token: taskToken,
        payload: { scope },
      });
      expect(delegate.statusCode).toBe(400);
      expect(delegate.json().error.code).toBe('CUSTOS_ERR_VALIDATION');
    });

    it('more labels than the bound, or a huge label, is refused', async () => {
      const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
      for (const labels of [many, { big: 'x'.repeat(257) }, { ['k'.repeat(10_000)]: 'v' }]) {
        const response = await s.call({ method: 'POST', url: '/v1/roles/agent/tasks', payload: { ttl: '5m', labels } });
        expect(response.statusCode).toBe(400);
      }
    });

    it.each([
      ['too long', `${'1,'.repeat(200)}1 * * * *`],
      ['a long list within the length bound', `${'0-59/1,'.repeat(16)}0 * * * *`],
      ['one that never matches', '0 0 31 2 *'],
      ['garbage', '((((((((((((((((((((('],
    ])('a cron schedule that is %s is refused or accepted quickly, never a server error', async (_, cron) => {
      await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/app/rotated', payload: { data: { k: fakeSecret() } } });
      const response = await s.call({
        method: 'PUT',
        url: '/v1/rotation/kv/app/rotated',
        payload: { rotator: { type: 'random', field: 'k' }, cron },
      });
      expect(response.statusCode).toBeLessThan(500);
      expect((await s.call({ method: 'GET', url: '/v1/sys/health', token: null })).statusCode).toBe(200);
    });
  });
});
