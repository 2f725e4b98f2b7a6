import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyAddress } from './address-ranges.js';
import { egressFetch } from './egress-fetch.js';
import { EgressPolicy, type EgressResolver } from './egress-policy.js';
import { parseEgressRule } from './egress-rule.js';
import { EgressSocket } from './egress-socket.js';
import { formatIp, parseIp } from './ip-address.js';
import { isLoopbackHost } from './loopback-host.js';

const classOf = (text: string) => classifyAddress(parseIp(text) as Uint8Array);
const stubResolver =
  (answers: Record<string, string[]>): EgressResolver =>
  async (name) =>
    (answers[name] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

describe('addresses in every spelling', () => {
  it.each([
    ['127.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['[::1]', '::1'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
  ])('%s is %s', (text, canonical) => {
    expect(formatIp(parseIp(text) as Uint8Array)).toBe(canonical);
  });

  it('names, and numbers out of range, are not addresses', () => {
    for (const text of ['localhost', 'example.com', '256.1.1.1', '1.2.3.4.5', '1..2', '08.1.1.1', '', '[::1']) {
      expect(parseIp(text), text).toBeUndefined();
    }
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::127.0.0.1', 'loopback'], // IPv4-compatible
    ['64:ff9b::7f00:1', 'loopback'], // NAT64
    ['2002:7f00:1::', 'loopback'], // 6to4
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['169.254.169.254', 'link-local'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['fe80::1', 'link-local'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.100.100.200', 'private'],
    ['fd00:ec2::254', 'private'],
    ['fc00::1', 'private'],
    ['64:ff9b:1::1', 'private'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['2001::1', 'reserved'], // Teredo
    ['192.0.2.1', 'documentation'],
    ['2001:db8::1', 'documentation'],
    ['93.184.216.34', 'public'],
    ['172.32.0.1', 'public'],
    ['::ffff:93.184.216.34', 'public'],
    ['2606:4700:4700::1111', 'public'],
  ])('%s is %s', (text, kind) => {
    expect(classOf(text)).toBe(kind);
  });
});

describe('allow-list entries', () => {
  it('parses addresses, CIDR blocks, names, suffixes, ports and socket paths', () => {
    expect(parseEgressRule('10.0.0.0/8')).toMatchObject({ kind: 'cidr', bits: 8 });
    expect(parseEgressRule('127.0.0.1:5432')).toMatchObject({ kind: 'cidr', bits: 32, port: 5432 });
    expect(parseEgressRule('[::1]:8443')).toMatchObject({ kind: 'cidr', bits: 128, port: 8443 });
    expect(parseEgressRule('fd00::/8')).toMatchObject({ kind: 'cidr', bits: 8 });
    expect(parseEgressRule('DB.Internal.')).toMatchObject({ kind: 'name', name: 'db.internal' });
    expect(parseEgressRule('*.corp.example:443')).toMatchObject({ kind: 'suffix', suffix: 'corp.example', port: 443 });
    expect(parseEgressRule('unix:/var/run/postgresql/')).toMatchObject({ kind: 'unix', path: '/var/run/postgresql' });
  });

  it.each(['127.1', '10.0.0.0/33', 'host:0', 'host:99999', '*.com', 'unix:relative', 'a/b/c', 'bad host', '::1/129'])(
    'refuses %s with a clear error',
    (entry) => {
      expect(() => parseEgressRule(entry)).toThrow(/egress allow entry/);
    },
  );
});

describe('isLoopbackHost: the one "http only on loopback" rule', () => {
  it.each(['127.0.0.1', '127.0.0.2', '[::1]', '[::ffff:127.0.0.1]', 'localhost', 'LOCALHOST', 'localhost.'])(
    '%s is loopback',
    (host) => {
      expect(isLoopbackHost(host)).toBe(true);
    },
  );
  it.each(['10.0.0.1', '[fe80::1]', 'localhost.example', 'db.internal', '169.254.169.254', '[::2]', ''])(
    '%s is not',
    (host) => {
      expect(isLoopbackHost(host)).toBe(false);
    },
  );
});

describe('Unix socket entries', () => {
  const policy = new EgressPolicy({ allow: ['unix:/var/run/postgresql'], resolver: stubResolver({}) });

  it('allow the directory and what is below it, on a path-segment boundary', () => {
    expect(policy.allowsSocketPath('/var/run/postgresql/.s.PGSQL.5432')).toBe(true);
    expect(policy.allowsSocketPath('/var/run/postgresql')).toBe(true);
    expect(policy.allowsSocketPath('/var/run/postgresql2/.s.PGSQL.5432')).toBe(false);
    expect(policy.allowsSocketPath('/var/run/postgresq')).toBe(false);
  });

  it.each([
    '/var/run/postgresql/../../tmp/.s.PGSQL.5432',
    '/var/run/postgresql/..',
    '/var/run/postgresql/./.s.PGSQL.5432',
    '/var/run/postgresql//.s.PGSQL.5432',
    '/var/run/postgresql/sub/../../../etc/x',
    'var/run/postgresql/.s.PGSQL.5432',
  ])('refuse a path that is not normal, whatever it starts with: %s', (path) => {
    expect(policy.allowsSocketPath(path)).toBe(false);
    expect(() => policy.assertSocketPathAllowed(path)).toThrow(/not a normal absolute path/);
  });

  it.each(['unix:/var/run/../tmp', 'unix:/var//run', 'unix:/var/./run', 'unix:/'])(
    'an entry that is not a normal absolute path is refused: %s',
    (entry) => {
      expect(() => parseEgressRule(entry)).toThrow(/egress allow entry/);
    },
  );
});

describe('EgressPolicy decisions', () => {
  const loopback = new EgressPolicy({ resolver: stubResolver({}) });

  it.each([
    '127.0.0.1',
    '127.1',
    '2130706433',
    '0x7f.1',
    '[::1]',
    '[::ffff:127.0.0.1]',
    '0.0.0.0',
    '169.254.169.254',
    '10.0.0.1',
    '[fd00:ec2::254]',
  ])('refuses %s by default', async (host) => {
    await expect(loopback.resolve(host, 80)).rejects.toMatchObject({ code: 'CUSTOS_ERR_EGRESS_REFUSED' });
  });

  it('tells the operator which entry allows a refused destination, without resolved addresses', async () => {
    const policy = new EgressPolicy({ resolver: stubResolver({ 'db.internal': ['10.9.8.7'] }) });
    const byNumber = await policy.resolve('0x7f.1', 5432).catch((e: Error) => e.message);
    expect(byNumber).toContain('--egress-allow 127.0.0.1');
    const byName = await policy.resolve('db.internal', 5432).catch((e: Error) => e.message);
    expect(byName).toContain('--egress-allow db.internal');
    expect(byName).not.toContain('10.9.8.7');
  });

  it('a refused name gets one fixed refusal: resolving to a refused range, not resolving, or timing out look alike', async () => {
    // Whoever configures a JWKS or webhook URL must not be able to classify
    // internal names by the answer: private, missing or slow are one refusal.
    const policies = {
      private: new EgressPolicy({ resolver: stubResolver({ 'db.internal': ['10.9.8.7'] }) }),
      loopback: new EgressPolicy({ resolver: stubResolver({ 'db.internal': ['127.0.0.1'] }) }),
      mixed: new EgressPolicy({ resolver: stubResolver({ 'db.internal': ['93.184.216.34', '169.254.169.254'] }) }),
      missing: new EgressPolicy({ resolver: stubResolver({}) }),
      failing: new EgressPolicy({
        resolver: async () => {
          throw Object.assign(new Error('getaddrinfo ENOTFOUND db.internal'), { code: 'ENOTFOUND' });
        },
      }),
      slow: new EgressPolicy({ dnsTimeoutMs: 20, resolver: () => new Promise(() => undefined) }),
      exclusive: new EgressPolicy({ allowPublic: false, resolver: stubResolver({ 'db.internal': ['93.184.216.34'] }) }),
    };
    const outcomes = new Set<string>();
    const details = new Set<string>();
    for (const [why, policy] of Object.entries(policies)) {
      for (const attempt of [
        policy.resolve('db.internal', 443),
        policy.checkUrl('https://db.internal/jwks'),
      ] as Promise<unknown>[]) {
        const error = await attempt.then(
          () => undefined,
          (e: unknown) => e as { code?: string; message?: string; detail?: string },
        );
        expect(error?.code, why).toBe('CUSTOS_ERR_EGRESS_REFUSED');
        outcomes.add(String(error?.message));
        // The catalogue's sentence is the same for every refusal; the rest must not tell.
        details.add(String(error?.detail));
      }
    }
    expect([...outcomes]).toHaveLength(1);
    const [message] = [...details];
    expect(details.size).toBe(1);
    expect(message).toContain('--egress-allow db.internal');
    for (const revealing of ['private', 'loopback', 'link-local', 'resolve to a', 'does not resolve', 'timed out']) {
      expect(message).not.toContain(revealing);
    }
  });

  it('a literal address keeps its helpful refusal (it reveals nothing), and a vouched-for name its DNS failure', async () => {
    const policy = new EgressPolicy({ allow: ['db.internal'], resolver: stubResolver({}) });
    const literal = await policy.resolve('127.0.0.1', 5432).catch((e: Error) => e.message);
    expect(literal).toContain('is a loopback address');
    expect(literal).toContain('--egress-allow 127.0.0.1');
    await expect(policy.resolve('db.internal', 5432)).rejects.toMatchObject({ code: 'CUSTOS_ERR_EGRESS_FAILED' });
  });

  it('allows what an entry covers, on its port only when it names one', async () => {
    const policy = new EgressPolicy({ allow: ['127.0.0.1:5432', '10.0.0.0/8'], resolver: stubResolver({}) });
    await expect(policy.resolve('127.0.0.1', 5432)).resolves.toEqual({ address: '127.0.0.1', family: 4 });
    await expect(policy.resolve('[::ffff:127.0.0.1]', 5432)).resolves.toMatchObject({ family: 6 });
    await expect(policy.resolve('127.0.0.1', 5433)).rejects.toMatchObject({ code: 'CUSTOS_ERR_EGRESS_REFUSED' });
    await expect(policy.resolve('10.200.0.1', 1)).resolves.toMatchObject({ address: '10.200.0.1' });
    await expect(policy.resolve('11.0.0.1', 1)).resolves.toMatchObject({ address: '11.0.0.1' }); // public
  });

  it('a name is allowed only when every address it resolves to is', async () => {
    const resolver = stubResolver({
      'public-looking.example': ['127.0.0.1'],
      'mixed.example': ['93.184.216.34', '10.0.0.1'],
      'fine.example': ['93.184.216.34'],
      'db.internal': ['10.0.0.7'],
    });
    const policy = new EgressPolicy({ allow: ['db.internal'], resolver });
    await expect(policy.resolve('public-looking.example', 443)).rejects.toMatchObject({
      code: 'CUSTOS_ERR_EGRESS_REFUSED',
    });
    await expect(policy.resolve('mixed.example', 443)).rejects.toMatchObject({ code: 'CUSTOS_ERR_EGRESS_REFUSED' });
    await expect(policy.resolve('fine.example', 443)).resolves.toEqual({ address: '93.184.216.34', family: 4 });
    await expect(policy.resolve('DB.internal.', 5432)).resolves.toEqual({ address: '10.0.0.7', family: 4 });
  });

  it('allow_public off makes the list exclusive', async () => {
    const policy = new EgressPolicy({ allowPublic: false, allow: ['*.corp.example'], resolver: stubResolver({}) });
    await expect(policy.resolve('93.184.216.34', 443)).rejects.toThrow(/not on the egress allow-list/);
    const corp = new EgressPolicy({
      allowPublic: false,
      allow: ['*.corp.example'],
      resolver: stubResolver({ 'jwks.corp.example': ['93.184.216.34'] }),
    });
    await expect(corp.resolve('jwks.corp.example', 443)).resolves.toMatchObject({ address: '93.184.216.34' });
  });

  it('a resolver that never answers times out', async () => {
    const policy = new EgressPolicy({
      dnsTimeoutMs: 50,
      allow: ['slow.example'],
      resolver: () => new Promise(() => undefined),
    });
    await expect(policy.resolve('slow.example', 443)).rejects.toThrow(/timed out/);
  });

  it('configure-time URL checks: scheme, credentials, refused hosts', async () => {
    const policy = new EgressPolicy({ resolver: stubResolver({}) });
    await expect(policy.checkUrl('ftp://x.example/')).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
    await expect(policy.checkUrl('https://u:p@x.example/')).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
    await expect(policy.checkUrl('http://2130706433/')).rejects.toMatchObject({ code: 'CUSTOS_ERR_EGRESS_REFUSED' });
    // A name that does not resolve (yet) is refused as a refused one is: no oracle on internal DNS.
    await expect(policy.checkUrl('https://not-yet.example/')).rejects.toMatchObject({
      code: 'CUSTOS_ERR_EGRESS_REFUSED',
    });
  });
});

describe('connections through the policy', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });
  const listen = async (handler: Parameters<typeof createServer>[0]): Promise<number> => {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  };

  it('egressFetch never follows a redirect, and the redirect target is never contacted', async () => {
    let targetHits = 0;
    const target = await listen((_req, res) => {
      targetHits++;
      res.end('{}');
    });
    const origin = await listen((_req, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${target}/steal` }).end();
    });
    const policy = new EgressPolicy({ allow: [`127.0.0.1:${origin}`] });
    const response = await egressFetch(policy, `http://127.0.0.1:${origin}/hook`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(307);
    expect(targetHits).toBe(0);
  });

  it('egressFetch connects to the address it checked, whatever DNS answers next (no rebinding)', async () => {
    const port = await listen((req, res) => res.end(JSON.stringify({ host: req.headers.host })));
    let calls = 0;
    // First answer allowed; a second resolution would say metadata.
    const resolver: EgressResolver = async () => [
      { address: calls++ === 0 ? '127.0.0.1' : '169.254.169.254', family: 4 },
    ];
    const policy = new EgressPolicy({ allow: [`127.0.0.1:${port}`], resolver });
    const response = await egressFetch(policy, `http://rebind.example:${port}/x`);
    expect(await response.json()).toEqual({ host: `rebind.example:${port}` });
    expect(calls).toBe(1);
  });

  it('egressFetch gives up on a destination that never answers, and on a body too large', async () => {
    const hanging = await listen(() => undefined);
    const big = await listen((_req, res) => res.end('x'.repeat(4096)));
    const policy = new EgressPolicy({ allow: ['127.0.0.1'], timeoutMs: 200, maxResponseBytes: 1024 });
    await expect(egressFetch(policy, `http://127.0.0.1:${hanging}/`)).rejects.toMatchObject({
      code: 'CUSTOS_ERR_EGRESS_FAILED',
    });
    await expect(egressFetch(policy, `http://127.0.0.1:${big}/`)).rejects.toMatchObject({
      code: 'CUSTOS_ERR_EGRESS_FAILED',
    });
  });

  it('EgressSocket refuses a literal, a name and a socket path the policy refuses, and connects to allowed ones', async () => {
    const port = await listen((_req, res) => res.end());
    const policy = new EgressPolicy({ resolver: stubResolver({ 'sneaky.example': ['127.0.0.1'] }) });
    const outcome = (connect: (s: EgressSocket) => void, p = policy) =>
      new Promise<string>((resolve) => {
        const socket = new EgressSocket(p);
        socket.once('connect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.once('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message));
        connect(socket);
      });
    expect(await outcome((s) => s.connect(port, '127.0.0.1'))).toBe('CUSTOS_ERR_EGRESS_REFUSED');
    expect(await outcome((s) => s.connect(port, '2130706433'))).toBe('CUSTOS_ERR_EGRESS_REFUSED');
    expect(await outcome((s) => s.connect({ port, host: 'sneaky.example' }))).toBe('CUSTOS_ERR_EGRESS_REFUSED');
    expect(await outcome((s) => s.connect('/var/run/postgresql/.s.PGSQL.5432'))).toBe('CUSTOS_ERR_EGRESS_REFUSED');
    const allowed = new EgressPolicy({ allow: [`127.0.0.1:${port}`] });
    expect(await outcome((s) => s.connect(port, '127.0.0.1'), allowed)).toBe('connected');
    expect(await outcome((s) => s.connect(port, 'localhost'), new EgressPolicy({ allow: ['localhost'] }))).toBe(
      'connected',
    );
  });
});
