import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './test-server.js';

/**
 * docs/task-tokens.md says what a task token is and how to use the OAuth
 * endpoints. Every example there is checked here against a real server: the
 * header and claims of real tokens, the `sub` of each way a task begins, and
 * each code block marked `<!-- runnable: NAME -->`, run as written with the
 * placeholder URL replaced by this server's.
 */
const DOC = readFileSync(join(import.meta.dirname, '../../../docs/task-tokens.md'), 'utf8');
const PLACEHOLDER = 'https://custos.example';

const section = (title: string) => {
  const start = DOC.indexOf(`\n## ${title}`);
  if (start < 0) throw new Error(`docs/task-tokens.md has no section "${title}"`);
  const end = DOC.indexOf('\n## ', start + 4);
  return DOC.slice(start, end < 0 ? undefined : end);
};
const decode = (part: string | undefined) => JSON.parse(Buffer.from(part ?? '', 'base64url').toString());
const headerOf = (token: string) => decode(token.split('.')[0]) as Record<string, unknown>;
const claimsOf = (token: string) => decode(token.split('.')[1]) as Record<string, unknown>;

/** The code of a runnable block, its `import` lines checked against what the test provides, and removed. */
function runnable(name: string, provided: Record<string, Record<string, unknown>>): string {
  const match = new RegExp(`<!-- runnable: ${name} -->\\n\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(DOC);
  if (!match?.[1]) throw new Error(`docs/task-tokens.md has no runnable block "${name}"`);
  const lines = match[1].split('\n');
  for (const line of lines.filter((l) => l.startsWith('import '))) {
    const m = /^import \{ ([^}]+) \} from '([^']+)';$/.exec(line);
    const module = m?.[2] ?? '';
    for (const binding of (m?.[1] ?? '').split(',').map((b) => b.trim())) {
      expect(provided[module]?.[binding], `${name}: ${line}`).toBeTypeOf('function');
    }
  }
  return lines.filter((l) => !l.startsWith('import ')).join('\n');
}

/** Runs a block with the given free variables and returns the named results. */
async function run(
  code: string,
  base: string,
  scope: Record<string, unknown>,
  results: string[],
): Promise<Record<string, unknown>> {
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
    ...args: string[]
  ) => (...values: unknown[]) => Promise<Record<string, unknown>>;
  const body = `${code.replaceAll(PLACEHOLDER, base)}\nreturn { ${results.join(', ')} };`;
  return new AsyncFunction(...Object.keys(scope), body)(...Object.values(scope));
}

/** A free loopback port, so that the node's issuer can be the address it listens on. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('docs/task-tokens.md matches the server', () => {
  let s: TestServer;
  let base: string;
  let root: { token: string; task_id: string };
  let bootstrapAccessor: string;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    s = await startTestServer('sqlite', { issuer: base });
    await s.app.listen({ host: '127.0.0.1', port });
    await s.call({
      method: 'PUT',
      url: '/v1/policies/docs',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/team/");\n' +
          'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"resource/docs-mcp");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    const role = await s.call({
      method: 'PUT',
      url: '/v1/roles/docs',
      payload: { policies: ['docs'], max_ttl: '15m', auth: ['bootstrap'] },
    });
    expect(role.statusCode).toBe(200);
    const bootstrap = (await s.call({ method: 'POST', url: '/v1/roles/docs/bootstrap', payload: {} })).json();
    bootstrapAccessor = bootstrap.accessor;
    const login = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: bootstrap.token, ttl: '10m' },
    });
    expect(login.statusCode).toBe(200);
    root = login.json();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('the header is exactly the documented one', async () => {
    const documented = /```json\n(\{[^\n]*\})\n```/.exec(section('Header'))?.[1] ?? '';
    const shape = JSON.parse(documented) as Record<string, string>;
    const header = headerOf(root.token);
    expect(Object.keys(header)).toEqual(Object.keys(shape));
    expect(header).toMatchObject({ alg: shape.alg, typ: shape.typ });
    const jwks = (await s.call({ method: 'GET', url: '/.well-known/jwks.json', token: null })).json();
    expect(jwks.keys.map((k: { kid: string }) => k.kid)).toContain(header.kid);
  });

  it('the claims table lists the claims of real tokens, and aud is "custos"', async () => {
    const table = [...section('Claims').matchAll(/^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \|/gm)].flatMap((m) =>
      [m[1], m[2]].filter((c): c is string => c !== undefined),
    );
    const child = (
      await s.call({
        method: 'POST',
        url: '/v1/oauth/token',
        token: null,
        payload: {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: root.token,
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        },
      })
    ).json().access_token as string;
    const dpop = await jose.generateKeyPair('ES256');
    const thumbprint = await jose.calculateJwkThumbprint(await jose.exportJWK(dpop.publicKey));
    await s.call({
      method: 'PUT',
      url: '/v1/roles/docs-bound',
      payload: { policies: ['docs'], require_dpop: true, max_ttl: '10m' },
    });
    const bound = (
      await s.call({ method: 'POST', url: '/v1/roles/docs-bound/tasks', payload: { ttl: '1m', dpop_jkt: thumbprint } })
    ).json().token as string;
    const rootClaims = claimsOf(root.token);
    expect(Object.keys(rootClaims).sort()).toEqual(table.filter((c) => c !== 'act' && c !== 'cnf').sort());
    expect(Object.keys(claimsOf(child)).sort()).toEqual(table.filter((c) => c !== 'cnf').sort());
    expect(Object.keys(claimsOf(bound)).sort()).toEqual(table.filter((c) => c !== 'act').sort());
    expect(rootClaims).toMatchObject({ aud: 'custos', iss: base, nbf: rootClaims.iat, parent_task_id: null, depth: 0 });
    expect(claimsOf(child)).toMatchObject({ sub: rootClaims.sub, depth: 1, act: { task_id: root.task_id } });
  });

  it('each way a task begins gives the documented sub', async () => {
    const table = section('Claims');
    expect(table).toContain('`bootstrap:<accessor of the bootstrap token>`');
    expect(claimsOf(root.token).sub).toBe(`bootstrap:${bootstrapAccessor}`);

    expect(table).toContain("`token:<accessor of the operator's token>`");
    const self = (await s.call({ method: 'GET', url: '/v1/auth/token/self' })).json();
    const started = (await s.call({ method: 'POST', url: '/v1/roles/docs/tasks', payload: { ttl: '1m' } })).json();
    expect(claimsOf(started.token).sub).toBe(`token:${self.accessor}`);

    expect(table).toContain('`jwt:<iss of the workload JWT>#<its sub>`');
    const { privateKey, publicKey } = await jose.generateKeyPair('ES256');
    const ciIssuer = 'https://ci.docs.example.test';
    const method = await s.call({
      method: 'PUT',
      url: '/v1/auth/jwt/methods/docs-ci',
      payload: {
        issuer: ciIssuer,
        audience: 'custos',
        jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'docs-ci', alg: 'ES256', use: 'sig' }] },
      },
    });
    expect(method.statusCode).toBe(200);
    const ciRole = await s.call({
      method: 'PUT',
      url: '/v1/roles/docs-ci',
      payload: {
        policies: ['docs'],
        auth: ['jwt'],
        bound_claims: { sub: 'repo:acme/docs:*' },
        jwt_methods: ['docs-ci'],
        max_ttl: '10m',
      },
    });
    expect(ciRole.statusCode).toBe(200);
    const workload = await new jose.SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'docs-ci' })
      .setIssuer(ciIssuer)
      .setAudience('custos')
      .setSubject('repo:acme/docs:ref:refs/heads/main')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    const jwtLogin = await s.call({
      method: 'POST',
      url: '/v1/auth/jwt/login',
      token: null,
      payload: { role: 'docs-ci', jwt: workload },
    });
    expect(jwtLogin.statusCode).toBe(200);
    expect(claimsOf(jwtLogin.json().token).sub).toBe(`jwt:${ciIssuer}#repo:acme/docs:ref:refs/heads/main`);
  });

  it('runnable: verify-offline — jose verifies a task token against the published JWKS', async () => {
    const code = runnable('verify-offline', { jose: jose as unknown as Record<string, unknown> });
    const { payload } = await run(
      code,
      base,
      { token: root.token, createRemoteJWKSet: jose.createRemoteJWKSet, jwtVerify: jose.jwtVerify },
      ['payload'],
    );
    expect(payload).toMatchObject({ task_id: root.task_id, aud: 'custos', iss: base });
  });

  it('runnable: token-exchange — a form-encoded exchange returns the documented response', async () => {
    const { child } = await run(runnable('token-exchange', {}), base, { parentToken: root.token }, ['child']);
    expect(child).toEqual({
      access_token: expect.any(String),
      issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_type: 'Bearer',
      expires_in: expect.any(Number),
      scope: 'read:kv/team/a/*',
      task_id: expect.stringMatching(/^tsk_/),
      accessor: expect.stringMatching(/^tac_/),
    });
    expect((child as { expires_in: number }).expires_in).toBeLessThanOrEqual(300);
  });

  it('runnable: resource-exchange — a token for a registered resource carries its URL as aud', async () => {
    await s.call({
      method: 'PUT',
      url: '/v1/resources/docs-mcp',
      payload: { url: 'https://mcp.example.com/mcp', scopes: ['read:kv/team/*'] },
    });
    const { forMcp } = await run(runnable('resource-exchange', {}), base, { parentToken: root.token }, ['forMcp']);
    const issued = forMcp as { access_token: string; scope: string; aud: string };
    expect(issued).toMatchObject({ scope: 'read:kv/team/*', aud: 'https://mcp.example.com/mcp' });
    expect(claimsOf(issued.access_token).aud).toBe('https://mcp.example.com/mcp');
    const metadata = await s.call({
      method: 'GET',
      url: '/.well-known/oauth-protected-resource/docs-mcp',
      token: null,
    });
    expect(Object.keys(metadata.json()).sort()).toEqual(
      ['resource', 'authorization_servers', 'scopes_supported', 'bearer_methods_supported'].sort(),
    );
  });

  it('runnable: introspect — a Bearer caller gets the documented answer, active or not', async () => {
    const code = runnable('introspect', {});
    const { introspection } = await run(code, base, { callerToken: s.rootToken, token: root.token }, ['introspection']);
    expect(Object.keys(introspection as object).sort()).toEqual(
      [
        'active',
        'token_type',
        'sub',
        'scope',
        'exp',
        'iss',
        'aud',
        'task_id',
        'parent_task_id',
        'role',
        'depth',
        'task_chain',
      ]
        .slice()
        .sort(),
    );
    const revoked = await s.call({ method: 'POST', url: '/v1/roles/docs/tasks', payload: { ttl: '1m' } });
    await s.call({ method: 'POST', url: `/v1/tasks/${revoked.json().task_id}/revoke` });
    const inactive = await run(code, base, { callerToken: s.rootToken, token: revoked.json().token }, [
      'introspection',
    ]);
    expect(inactive.introspection).toEqual({ active: false });
  });

  it('the discovery section lists what the metadata says', async () => {
    const meta = (await s.call({ method: 'GET', url: '/.well-known/oauth-authorization-server', token: null })).json();
    const text = section('Discovery');
    for (const name of Object.keys(meta)) expect(text, name).toContain(`\`${name}`);
    expect(text).toContain('`introspection_endpoint_auth_methods_supported: ["Bearer", "DPoP"]`');
    expect(meta.introspection_endpoint_auth_methods_supported).toEqual(['Bearer', 'DPoP']);
  });
});
