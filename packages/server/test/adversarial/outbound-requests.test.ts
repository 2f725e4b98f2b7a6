import { lookup } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EgressResolver } from '@custos/core';
import { createEngine } from '@custos/engines';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../../test-support/postgres.js';
import { fakeSecret, startTestServer, type TestServer } from '../test-server.js';

// Attack class: server-side request forgery through every outbound call
// custos makes — webhook rotators, JWKS URLs, database engines. The server
// here allows exactly the loopback ports of the receivers it needs; every
// other loopback port (the "canary", standing for any service on custos's
// host), link-local and private range must stay out of reach, in every
// spelling, through DNS, after DNS changes, and through redirects. Refusals
// happen before any connection is opened: nothing is sent to a private or
// link-local address by these tests.

interface Listener {
  server: Server;
  port: number;
  hits: number;
  bodies: string[];
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<Listener> {
  const listener: Listener = { server: createServer(), port: 0, hits: 0, bodies: [] };
  listener.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    listener.hits++;
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      listener.bodies.push(body);
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => listener.server.listen(0, '127.0.0.1', r));
  listener.port = (listener.server.address() as AddressInfo).port;
  return listener;
}

const ack = (_req: IncomingMessage, res: ServerResponse) =>
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"ack":true}');

describe('outbound requests obey the egress policy', () => {
  let s: TestServer;
  /** Stands for any loopback service custos must not be turned against. Never allowed. */
  let canary: Listener;
  let receiver: Listener;
  let redirector: Listener;
  let hanging: Listener;
  /**
   * What `flip.example` resolves to now: 127.0.0.1 (allowed on the receiver's
   * port) when a test configures it, 127.0.0.2 (loopback, never allowed) when
   * the call is made — DNS rebinding, kept inside loopback.
   */
  let flipAnswer = '127.0.0.1';
  let movingAnswer = '93.184.216.34';
  /** Names the test's resolver answers for: a public-looking name that is loopback, and one whose answer flips. */
  const resolver: EgressResolver = async (name) => {
    if (name === 'public-looking.example') return [{ address: '127.0.0.1', family: 4 }];
    if (name === 'flip.example') return [{ address: flipAnswer, family: 4 }];
    // Only ever resolved by a configuration that is refused: nothing connects to it.
    if (name === 'public.example') return [{ address: '93.184.216.34', family: 4 }];
    // An internal name (private range) and one that does not exist: a configurer must not tell them apart.
    if (name === 'internal.example') return [{ address: '10.0.0.7', family: 4 }];
    if (name === 'nonexistent.example')
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    // Public when a webhook is configured (nothing is sent then), gone or internal when it is called.
    if (name === 'moving.example') {
      if (movingAnswer === 'gone')
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
      return [{ address: movingAnswer, family: 4 }];
    }
    return lookup(name, { all: true, verbatim: true });
  };

  beforeAll(async () => {
    canary = await listen(ack);
    receiver = await listen(ack);
    redirector = await listen((_req, res) =>
      res.writeHead(302, { location: `http://127.0.0.1:${canary.port}/stolen` }).end(),
    );
    hanging = await listen(() => undefined);
    s = await startTestServer('sqlite', {
      engineFactory: createEngine,
      egress: {
        allow: [`127.0.0.1:${receiver.port}`, `127.0.0.1:${redirector.port}`, `127.0.0.1:${hanging.port}`],
        resolver,
        timeoutMs: 500,
      },
    });
  });
  afterAll(async () => {
    await s?.close();
    for (const l of [canary, receiver, redirector, hanging]) {
      l?.server.closeAllConnections();
      await new Promise((r) => l?.server.close(r));
    }
  });

  const putSecret = (path: string, data: Record<string, string>) =>
    s.call({ method: 'PUT', url: `/v1/secrets/data/${path}`, payload: { data } });
  const webhook = (path: string, url: string) =>
    s.call({ method: 'PUT', url: `/v1/rotation/${path}`, payload: { rotator: { type: 'webhook', url } } });

  describe('webhook rotator URLs', () => {
    it.each([
      ['127.0.0.1', 'by number'],
      ['127.1', 'short form'],
      ['2130706433', 'one decimal number'],
      ['0x7f.1', 'hexadecimal'],
      ['0177.0.0.1', 'octal'],
      ['[::1]', 'IPv6 loopback'],
      ['[::ffff:127.0.0.1]', 'IPv4-mapped IPv6'],
      ['[::ffff:7f00:1]', 'IPv4-mapped IPv6, hex'],
      ['[::127.0.0.1]', 'IPv4-compatible IPv6'],
      ['[64:ff9b::7f00:1]', 'NAT64'],
      ['0.0.0.0', 'the unspecified address'],
      ['localhost', 'by name'],
      ['localhost.', 'by absolute name'],
      ['LOCALHOST', 'by name in capitals'],
      ['public-looking.example', 'by a public-looking name that resolves to loopback'],
    ])('a webhook cannot reach a loopback service: %s (%s)', async (host) => {
      await putSecret('kv/hooks/a', { value: fakeSecret() });
      const response = await webhook('kv/hooks/a', `http://${host}:${canary.port}/rotate`);
      expect(response.statusCode).toBe(403);
      expect(response.json().error.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
      expect(canary.hits).toBe(0);
    });

    it.each([
      ['169.254.169.254', 'cloud metadata'],
      ['[fd00:ec2::254]', 'cloud metadata over IPv6'],
      ['[64:ff9b::a9fe:a9fe]', 'cloud metadata through NAT64'],
      ['[fe80::1]', 'IPv6 link-local'],
      ['10.0.0.1', 'RFC 1918'],
      ['172.16.0.1', 'RFC 1918'],
      ['192.168.0.1', 'RFC 1918'],
      ['100.64.0.1', 'carrier-grade NAT'],
      ['[fc00::1]', 'unique local'],
      ['224.0.0.1', 'multicast'],
    ])('a webhook cannot reach link-local or private addresses: %s (%s)', async (host) => {
      const response = await webhook('kv/hooks/a', `http://${host}/latest/meta-data/`);
      expect(response.statusCode).toBe(403);
      expect(response.json().error.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
      // The refusal names the class and how an operator would allow it, never more.
      expect(response.json().error.message).toContain('--egress-allow');
    });

    it('the webhook body holds only the rotated field’s new value, its path and version', async () => {
      const other = fakeSecret('other-field');
      await putSecret('kv/hooks/only', { value: fakeSecret('v1'), username: 'svc-user', other });
      expect((await webhook('kv/hooks/only', `http://127.0.0.1:${receiver.port}/rotate`)).statusCode).toBe(200);
      receiver.bodies.length = 0;
      expect((await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/hooks/only' })).statusCode).toBe(200);
      const sent = JSON.parse(receiver.bodies[0] as string) as Record<string, unknown>;
      const current = (await s.call({ method: 'GET', url: '/v1/secrets/data/kv/hooks/only' })).json().data;
      expect(sent).toEqual({ path: 'kv/hooks/only', version: 2, field: 'value', value: current.value });
      expect(receiver.bodies[0]).not.toContain(other);
      expect(receiver.bodies[0]).not.toContain('svc-user');
    });

    it('a redirect from an allowed host to a refused one is not followed', async () => {
      await putSecret('kv/hooks/redirect', { value: fakeSecret() });
      expect((await webhook('kv/hooks/redirect', `http://127.0.0.1:${redirector.port}/rotate`)).statusCode).toBe(200);
      const rotated = await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/hooks/redirect' });
      expect(rotated.statusCode).toBe(502);
      expect(rotated.json().error.code).toBe('CUSTOS_ERR_ROTATION_FAILED');
      expect(redirector.hits).toBeGreaterThan(0);
      expect(canary.hits).toBe(0);
    });

    it('a destination that never answers is given up on; current is unchanged', async () => {
      await putSecret('kv/hooks/hang', { value: 'fake-unchanged' });
      expect((await webhook('kv/hooks/hang', `http://127.0.0.1:${hanging.port}/rotate`)).statusCode).toBe(200);
      const rotated = await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/hooks/hang' });
      expect(rotated.statusCode).toBe(502);
      expect(hanging.hits).toBe(1);
      const current = (await s.call({ method: 'GET', url: '/v1/secrets/data/kv/hooks/hang' })).json().data;
      expect(current.value).toBe('fake-unchanged');
    });

    it('a name checked at configuration is checked again at the call: DNS rebinding to loopback is refused', async () => {
      flipAnswer = '127.0.0.1';
      await putSecret('kv/hooks/flip', { value: fakeSecret() });
      // Allowed when configured (nothing is sent then), refused once it resolves elsewhere.
      expect((await webhook('kv/hooks/flip', `https://flip.example:${receiver.port}/rotate`)).statusCode).toBe(200);
      flipAnswer = '127.0.0.2';
      const hits = receiver.hits;
      const rotated = await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/hooks/flip' });
      expect(rotated.statusCode).toBe(502);
      expect(rotated.json().error.message).toContain('CUSTOS_ERR_EGRESS_REFUSED');
      expect((await s.call({ method: 'GET', url: '/v1/rotation/kv/hooks/flip' })).json().last_error).toBe(
        'CUSTOS_ERR_EGRESS_REFUSED',
      );
      expect(receiver.hits).toBe(hits);
    });

    it('a URL with credentials, another scheme, or plain http beyond loopback is refused', async () => {
      for (const url of [
        `http://u:p@127.0.0.1:${receiver.port}/`,
        `file:///etc/passwd`,
        `gopher://127.0.0.1:70/`,
        // Allowed, but not loopback: the value would cross the network in clear.
        `http://public.example/rotate`,
      ]) {
        const response = await webhook('kv/hooks/a', url);
        expect(response.statusCode, url).toBe(400);
      }
    });
  });

  describe('internal DNS is no oracle', () => {
    /** The refusal's detail with the host taken out: what tells one name from another, if anything. */
    const shape = (response: Awaited<ReturnType<TestServer['call']>>, host: string) => ({
      status: response.statusCode,
      code: response.json().error.code as string,
      message: (response.json().error.message as string).replaceAll(host, 'HOST'),
    });

    it('configuring a webhook, a JWKS URL or an engine cannot tell an internal name from one that does not exist', async () => {
      await putSecret('kv/hooks/dns', { value: fakeSecret() });
      const configure = {
        webhook: (host: string) => webhook('kv/hooks/dns', `https://${host}/rotate`),
        jwks: (host: string) =>
          s.call({
            method: 'PUT',
            url: '/v1/auth/jwt/methods/dns-probe',
            payload: { issuer: 'https://issuer.example', audience: 'custos', jwks_url: `https://${host}/jwks` },
          }),
        engine: (host: string) =>
          s.call({
            method: 'PUT',
            url: '/v1/engines/dns-probe',
            payload: { type: 'postgres', url: `postgres://admin:fake-pw@${host}:5432/app` },
          }),
      };
      for (const [what, call] of Object.entries(configure)) {
        const internal = shape(await call('internal.example'), 'internal.example');
        const missing = shape(await call('nonexistent.example'), 'nonexistent.example');
        expect(internal.code, what).toBe('CUSTOS_ERR_EGRESS_REFUSED');
        expect(missing, what).toEqual(internal);
        expect(internal.message, what).not.toMatch(/resolves to|does not resolve|timed out/);
      }
    });

    it('…nor can a rotation run later: a name gone or turned internal gives the same refusal', async () => {
      await putSecret('kv/hooks/moving', { value: fakeSecret() });
      movingAnswer = '93.184.216.34';
      expect((await webhook('kv/hooks/moving', 'https://moving.example/rotate')).statusCode).toBe(200);
      const outcomes = [];
      for (const answer of ['10.0.0.7', 'gone']) {
        movingAnswer = answer;
        const rotated = await s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/hooks/moving' });
        const policy = (await s.call({ method: 'GET', url: '/v1/rotation/kv/hooks/moving' })).json();
        outcomes.push({ status: rotated.statusCode, body: rotated.json(), last_error: policy.last_error });
      }
      expect(outcomes[0]).toMatchObject({ status: 502, last_error: 'CUSTOS_ERR_EGRESS_REFUSED' });
      expect(outcomes[1]).toEqual(outcomes[0]);
    });
  });

  describe('JWKS URLs', () => {
    const method = (name: string, jwksUrl: string) =>
      s.call({
        method: 'PUT',
        url: `/v1/auth/jwt/methods/${name}`,
        payload: { issuer: 'https://issuer.example', audience: 'custos', jwks_url: jwksUrl },
      });
    const login = async (methodName: string) => {
      await s.call({
        method: 'PUT',
        url: `/v1/roles/jwt-${methodName}`,
        payload: { policies: [], auth: ['jwt'], bound_claims: { sub: '*' }, jwt_methods: [methodName] },
      });
      const { privateKey } = await generateKeyPair('RS256');
      const jwt = await new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer('https://issuer.example')
        .setAudience('custos')
        .setSubject('workload')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      return s.call({
        method: 'POST',
        url: '/v1/auth/jwt/login',
        token: null,
        payload: { role: `jwt-${methodName}`, jwt },
      });
    };

    it.each([
      `http://127.0.0.1:CANARY/jwks`,
      `http://[::1]:CANARY/jwks`,
      `http://localhost:CANARY/jwks`,
      `https://2130706433:CANARY/jwks`,
      `https://public-looking.example:CANARY/jwks`,
      `https://169.254.169.254/jwks`,
      `https://10.0.0.1/jwks`,
    ])('a JWKS URL cannot point at loopback, metadata or private addresses: %s', async (template) => {
      const response = await method('probe', template.replace('CANARY', String(canary.port)));
      expect(response.statusCode).toBe(403);
      expect(response.json().error.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
      expect(canary.hits).toBe(0);
    });

    it('a JWKS fetch is checked at every fetch (DNS rebinding) and never follows a redirect', async () => {
      flipAnswer = '127.0.0.1';
      expect((await method('flipping', `https://flip.example:${receiver.port}/jwks`)).statusCode).toBe(200);
      flipAnswer = '127.0.0.2';
      const hits = receiver.hits;
      expect((await login('flipping')).statusCode).toBe(401);
      expect(receiver.hits).toBe(hits);
      expect((await method('redirected', `http://127.0.0.1:${redirector.port}/jwks`)).statusCode).toBe(200);
      const before = redirector.hits;
      expect((await login('redirected')).statusCode).toBe(401);
      expect(redirector.hits).toBeGreaterThan(before);
      expect(canary.hits).toBe(0);
    });
  });

  describe('database engine URLs', () => {
    it.each([
      ['postgres', 'postgres://postgres@127.0.0.1:5432/postgres', 'loopback'],
      ['postgres', 'postgres://postgres@2130706433:5432/postgres', 'loopback as one number'],
      ['postgres', 'postgres://postgres@public-looking.example:5432/postgres', 'a name resolving to loopback'],
      ['postgres', 'postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres', 'a Unix socket'],
      ['postgres', 'postgres://postgres@169.254.169.254:5432/postgres', 'cloud metadata'],
      ['postgres', 'postgres://postgres@10.0.0.1:5432/postgres', 'a private address'],
      ['mysql', 'mysql://root@127.0.0.1:3306/mysql', 'loopback'],
      ['mysql', 'mysql://root@[::ffff:127.0.0.1]:3306/mysql', 'IPv4-mapped loopback'],
      ['mysql', 'mysql://root@192.168.0.1:3306/mysql', 'a private address'],
    ])('an engine cannot connect where the policy refuses (%s, %s: %s)', async (type, url) => {
      const response = await s.call({ method: 'PUT', url: '/v1/engines/probe', payload: { type, url } });
      expect(response.statusCode, url).toBe(403);
      expect(response.json().error.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
      // The answer names no URL (it may carry the admin password) — only host, class and the fix.
      expect(response.json().error.message).not.toContain('postgres://');
      expect(response.json().error.message).not.toContain('mysql://');
    });

    it.each([
      ['postgres', 'host=127.0.0.1', 'another host than the one checked'],
      ['postgres', 'sslrootcert=/nonexistent/custos-test/ca.pem', 'a file read on the main thread'],
      ['postgres', 'sslcert=/etc/passwd', 'a file read'],
      ['postgres', 'sslkey=/nonexistent/custos-test/fifo', 'a FIFO that blocks the event loop'],
      ['postgres', 'options=-c%20role%3Dpostgres', 'server settings'],
      ['mysql', 'host=127.0.0.1', 'another host than the one checked'],
      ['mysql', 'socketPath=/var/run/mysqld/mysqld.sock', 'a Unix socket past the unix: rule'],
      ['mysql', 'localAddress=10.0.0.5', 'another source address'],
      ['mysql', 'debug=true', 'packet dumps on stdout'],
      ['mysql', 'ssl=%7B%22rejectUnauthorized%22%3Afalse%7D', 'TLS without verification'],
    ])(
      'an engine URL cannot pass driver options (%s ?%s: %s); the refusal comes before any connection',
      async (type, query) => {
        const url = `${type}://admin:fake-engine-pw@db.example:1234/app?${query}`;
        const response = await s.call({ method: 'PUT', url: '/v1/engines/probe', payload: { type, url } });
        expect(response.statusCode, query).toBe(400);
        expect(response.json().error.code).toBe('CUSTOS_ERR_ENGINE_URL_REFUSED');
        expect(response.json().error.message).toContain(`"${query.split('=')[0]}"`);
        expect(response.json().error.message).not.toContain('fake-engine-pw');
      },
    );

    it('a local database is refused with the flag that allows it (what a dev-server user sees)', async () => {
      const response = await s.call({
        method: 'PUT',
        url: '/v1/engines/local',
        payload: { type: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/postgres' },
      });
      expect(response.json().error.message).toContain('is a loopback address');
      expect(response.json().error.message).toContain('--egress-allow 127.0.0.1');
    });
  });

  describe('upstreams (the credential proxy)', () => {
    const upstream = (name: string, base: string, allowHosts: string[] = []) =>
      s.call({
        method: 'PUT',
        url: `/v1/upstreams/${name}`,
        payload: {
          base_url: base,
          secret: 'kv/llm/key#v',
          inject: ['header:Authorization=Bearer {{value}}'],
          ...(allowHosts.length ? { allow_hosts: allowHosts } : {}),
        },
      });

    it('an upstream at a refused address is refused when configured, in every spelling and through DNS', async () => {
      for (const base of [
        `http://127.0.0.1:${canary.port}`,
        `http://[::ffff:127.0.0.1]:${canary.port}`,
        'https://169.254.169.254/latest',
        'https://[fe80::1]',
        'https://10.0.0.7',
        'https://public-looking.example',
        'https://internal.example',
      ]) {
        const r = await upstream('refused', base);
        expect(r.json().error?.code, base).toBe('CUSTOS_ERR_EGRESS_REFUSED');
      }
      expect(canary.hits).toBe(0);
    });

    it('allow_hosts widen the policy for their own upstream only, and only where they point', async () => {
      // Allowed for the receiver's port: the canary's port on the same address stays refused.
      const other = await upstream('other-port', `http://127.0.0.1:${canary.port}`, [`127.0.0.1:${receiver.port}`]);
      expect(other.json().error?.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
      expect((await upstream('own', `http://127.0.0.1:${canary.port}`, [`127.0.0.1:${canary.port}`])).statusCode).toBe(
        200,
      );
      // A second upstream at the same destination gains nothing from the first one's entry.
      const borrowed = await upstream('borrower', `http://127.0.0.1:${canary.port}/v2`);
      expect(borrowed.json().error?.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
      expect(canary.hits).toBe(0);
    });
  });
});

describe.skipIf(!hasPostgres())('outbound requests: a unix: allow entry covers its directory only', () => {
  let s: TestServer;
  /** The directory an operator allowed: nothing listens there. */
  let allowedDir: string;
  /** The local PostgreSQL's socket directory: never allowed here. */
  const realSocketDir = '/var/run/postgresql';

  beforeAll(async () => {
    allowedDir = mkdtempSync(join(tmpdir(), 'custos-allowed-sockets-'));
    s = await startTestServer('sqlite', { engineFactory: createEngine, egress: { allow: [`unix:${allowedDir}`] } });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(allowedDir, { recursive: true, force: true });
  });

  const engineAt = (socketDir: string) =>
    s.call({
      method: 'PUT',
      url: '/v1/engines/sock',
      payload: { type: 'postgres', url: `postgres://postgres@${encodeURIComponent(socketDir)}/postgres` },
    });

  it('a path that climbs out of an allowed socket directory with .. is refused, before any connection', async () => {
    const climbing = `${allowedDir}/${'../'.repeat(allowedDir.split('/').length)}${realSocketDir.slice(1)}`;
    const response = await engineAt(climbing);
    expect(response.statusCode).toBe(403);
    expect(response.json().error.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
    expect((await s.call({ method: 'GET', url: '/v1/engines/sock' })).statusCode).toBe(404);
  });

  it('…nor with . or empty segments, nor through a sibling whose name merely starts the same', async () => {
    for (const dir of [`${allowedDir}/.`, `${allowedDir}//`, `${allowedDir}-sibling`]) {
      const response = await engineAt(dir);
      expect(response.statusCode, dir).toBe(403);
      expect(response.json().error.code, dir).toBe('CUSTOS_ERR_EGRESS_REFUSED');
    }
  });
});
