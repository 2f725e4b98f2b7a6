import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CertificateAuthority } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUpstream,
  echo,
  type FakeUpstream,
  fakeUpstream,
  type ProxyHarness,
  startProxyHarness,
} from '../proxy/proxy-test-support.js';

// Attack class: the credential proxy's forward mode (HTTP_PROXY / HTTPS_PROXY)
// used as an open tunnel or to send the key elsewhere. A CONNECT is answered
// only for a live task token and the origin of an upstream it may use, and
// then intercepted with a certificate from custos's CA — never tunnelled
// blind. Real sockets: an https upstream on 127.0.0.1 (its own test CA,
// trusted through tls_ca), a plain one, and a canary on 127.0.0.2 that
// nothing may reach.

/** Opens a CONNECT; resolves with the status and the raw socket (for 200) or the raw refusal. */
function connectTunnel(
  proxyPort: number,
  authority: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; socket: Socket; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: authority, headers });
    req.on('connect', (res, socket: Socket, head: Buffer) => {
      if (res.statusCode === 200) {
        resolve({ status: 200, socket, body: '' });
        return;
      }
      let body = head.toString('utf8');
      socket.on('data', (c) => {
        body += c;
      });
      socket.on('close', () => resolve({ status: res.statusCode ?? 0, socket, body }));
      res.on('data', (c) => {
        body += c;
      });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: res.socket as Socket, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends one raw request over `socket` (already TLS or plain) and resolves with the raw answer. */
function rawOver(socket: Socket, head: string): Promise<string> {
  return new Promise((resolve) => {
    let answer = '';
    socket.on('data', (c) => {
      answer += c.toString('latin1');
    });
    socket.on('end', () => resolve(answer));
    socket.on('close', () => resolve(answer));
    socket.on('error', () => resolve(answer));
    socket.write(head);
  });
}
const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);

describe('the credential proxy in forward mode (CONNECT and absolute URLs)', () => {
  let h: ProxyHarness;
  let plain: FakeUpstream;
  let canary: FakeUpstream;
  let secureSeen: Array<{ url: string; authorization?: string; host?: string }>;
  let securePort: number;
  let secure: ReturnType<typeof createHttpsServer>;
  let custosCa: string;
  let token: string;
  const answers: string[] = [];
  const logLines: string[] = [];

  beforeAll(async () => {
    h = await startProxyHarness({}, logLines);
    canary = await fakeUpstream(echo, '127.0.0.2');
    plain = await fakeUpstream(echo);
    const upstreamCa = await CertificateAuthority.create({ trustDomain: 'forward-upstream.test' });
    const leaf = await upstreamCa.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    secureSeen = [];
    secure = createHttpsServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
      secureSeen.push({ url: req.url ?? '', authorization: req.headers.authorization, host: req.headers.host });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: req.url, authorization: req.headers.authorization }));
    });
    await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
    securePort = (secure.address() as AddressInfo).port;
    await addUpstream(h, 'secure', {
      base_url: `https://127.0.0.1:${securePort}/v1`,
      inject: ['header:Authorization=Bearer {{value}}'],
      allow_hosts: [`127.0.0.1:${securePort}`],
      tls_ca: upstreamCa.certPem,
    });
    await addUpstream(h, 'plain', {
      base_url: `http://127.0.0.1:${plain.port}/api`,
      inject: ['header:X-Api-Key={{value}}'],
      allow_hosts: [`127.0.0.1:${plain.port}`],
    });
    custosCa = (await h.s.call({ method: 'GET', url: '/v1/auth/cert/ca', token: null })).json().ca_pem;
    token = (await h.task()).token;
  });
  afterAll(async () => {
    expect(canary?.seen ?? []).toEqual([]);
    for (const a of answers) expect(a).not.toContain(h.key);
    const trail = JSON.stringify(await h.proxyEvents());
    expect(trail).not.toContain(h.key);
    expect(trail).not.toContain(token);
    expect(logLines.join('\n')).not.toContain(h.key);
    secure?.closeAllConnections();
    await new Promise((r) => secure?.close(r));
    await plain?.close();
    await canary?.close();
    await h?.close();
  });

  /** A CONNECT to the secure upstream, TLS with custos's CA, one request inside. */
  async function throughTunnel(path: string, tunnelToken = token, extra = ''): Promise<string> {
    const tunnel = await connectTunnel(h.proxyPort(), `127.0.0.1:${securePort}`, {
      'proxy-authorization': `Bearer ${tunnelToken}`,
    });
    expect(tunnel.status).toBe(200);
    const tls = tlsConnect({ socket: tunnel.socket, ca: custosCa, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', reject);
    });
    const raw = await rawOver(
      tls,
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${securePort}\r\nAuthorization: Bearer sk-placeholder\r\n${extra}Connection: close\r\n\r\n`,
    );
    answers.push(raw);
    return raw;
  }

  it('a CONNECT without a valid task token is 407, and opens nothing', async () => {
    const basic = (userPass: string) => ({
      'proxy-authorization': `Basic ${Buffer.from(userPass).toString('base64')}`,
    });
    for (const headers of [
      {},
      { 'proxy-authorization': 'Bearer not-a-token' },
      { authorization: `Bearer ${token}` },
      basic(`${token}`),
      basic('task:not-a-token'),
      basic(`task:${token}\r\nX: y`),
    ]) {
      const r = await connectTunnel(h.proxyPort(), `127.0.0.1:${securePort}`, headers);
      expect(r.status, JSON.stringify(Object.keys(headers))).toBe(407);
      expect(r.body).toContain('CUSTOS_ERR_UNAUTHENTICATED');
    }
    // The token as a proxy URL's password (what requests, httpx and curl send) is accepted.
    const viaBasic = await connectTunnel(h.proxyPort(), `127.0.0.1:${securePort}`, basic(`task:${token}`));
    expect(viaBasic.status).toBe(200);
    viaBasic.socket.destroy();
    const root = await connectTunnel(h.proxyPort(), `127.0.0.1:${securePort}`, {
      'proxy-authorization': `Bearer ${h.s.rootToken}`,
    });
    expect(root.status).toBe(403);
    expect(secureSeen).toEqual([]);
  });

  it('a CONNECT to a host no usable upstream is bound to is refused: never a blind tunnel', async () => {
    const auth = { 'proxy-authorization': `Bearer ${token}` };
    for (const authority of [`127.0.0.2:${canary.port}`, `127.0.0.1:${plain.port}`, 'example.com:443']) {
      const r = await connectTunnel(h.proxyPort(), authority, auth);
      expect([400, 403], authority).toContain(r.status);
    }
    // A task whose scope does not allow `use` on the upstream bound there gets the same refusal.
    const other = await h.task('use:upstream/plain');
    const r = await connectTunnel(h.proxyPort(), `127.0.0.1:${securePort}`, {
      'proxy-authorization': `Bearer ${other.token}`,
    });
    expect(r.status).toBe(403);
    const events = (await h.proxyEvents()).filter((e) => (e.request as { method: string }).method === 'CONNECT');
    expect(events.some((e) => e.reason === 'connect_to_unbound_host' && e.decision === 'deny')).toBe(true);
  });

  it('through a tunnel the key is injected for the bound upstream, the caller’s own Authorization dropped, the answer redacted', async () => {
    const raw = await throughTunnel('/v1/chat/completions?stream=false');
    expect(statusOf(raw)).toBe(200);
    expect(raw).toContain('"authorization":"Bearer [REDACTED:upstream:secure]"');
    expect(secureSeen.at(-1)).toEqual({
      url: '/v1/chat/completions?stream=false',
      authorization: `Bearer ${h.key}`,
      host: `127.0.0.1:${securePort}`,
    });
    const tunnelEvent = (await h.proxyEvents()).find(
      (e) => (e.request as { method: string }).method === 'CONNECT' && e.decision === 'allow',
    );
    expect(tunnelEvent).toMatchObject({
      status: 200,
      details: { phase: 'tunnel', proxy: 'forward', upstream: 'secure' },
    });
  });

  it('inside a tunnel, paths outside the base path and traversal are refused; a revoked task’s next request too', async () => {
    const before = secureSeen.length;
    expect(statusOf(await throughTunnel('/admin'))).toBe(403);
    expect(statusOf(await throughTunnel('/v1/../admin'))).toBe(400);
    expect(statusOf(await throughTunnel('/v1/%2e%2e/admin'))).toBe(400);
    const doomed = await h.task();
    expect(statusOf(await throughTunnel('/v1/ok', doomed.token))).toBe(200);
    // One tunnel, two requests: the token is checked again for each.
    const tunnel = await connectTunnel(h.proxyPort(), `127.0.0.1:${securePort}`, {
      'proxy-authorization': `Bearer ${doomed.token}`,
    });
    const tls = tlsConnect({ socket: tunnel.socket, ca: custosCa, host: '127.0.0.1' });
    await new Promise<void>((resolve) => tls.once('secureConnect', resolve));
    await h.s.call({ method: 'POST', url: `/v1/tasks/${doomed.task_id}/revoke` });
    const raw = await rawOver(tls, `GET /v1/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    answers.push(raw);
    expect(statusOf(raw)).toBe(401);
    expect(secureSeen.length - before).toBe(1);
  });

  it('a client that does not trust custos’s CA gets no connection, and nothing is sent', async () => {
    const before = secureSeen.length;
    const tunnel = await connectTunnel(h.proxyPort(), `127.0.0.1:${securePort}`, {
      'proxy-authorization': `Bearer ${token}`,
    });
    const tls = tlsConnect({ socket: tunnel.socket, host: '127.0.0.1' });
    const outcome = await new Promise<string>((resolve) => {
      tls.once('secureConnect', () => resolve('connected'));
      tls.once('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? 'error'));
    });
    expect(outcome).not.toBe('connected');
    expect(secureSeen.length).toBe(before);
  });

  it('plain HTTP with an absolute URL goes to the bound upstream only; any other origin is refused', async () => {
    const auth = `Proxy-Authorization: Bearer ${token}\r\n`;
    const { connect } = await import('node:net');
    const send = (line: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(h.proxyPort(), '127.0.0.1', () => {
          void rawOver(socket, `${line}\r\nHost: elsewhere.example\r\n${auth}Connection: close\r\n\r\n`).then(resolve);
        });
      });
    const ok = await send(`GET http://127.0.0.1:${plain.port}/api/items?x=1 HTTP/1.1`);
    answers.push(ok);
    expect(statusOf(ok)).toBe(200);
    expect(plain.seen.at(-1)).toMatchObject({ url: '/api/items?x=1', headers: { 'x-api-key': h.key } });
    for (const line of [
      `GET http://127.0.0.2:${canary.port}/api/x HTTP/1.1`,
      `GET http://127.0.0.1:${plain.port}/other HTTP/1.1`,
      `GET https://127.0.0.1:${securePort}/v1/x HTTP/1.1`,
      `GET http://user:pw@127.0.0.1:${plain.port}/api/x HTTP/1.1`,
    ]) {
      const raw = await send(line);
      answers.push(raw);
      expect([400, 403], line).toContain(statusOf(raw));
    }
    const noToken = await new Promise<string>((resolve) => {
      const socket = connect(h.proxyPort(), '127.0.0.1', () => {
        void rawOver(
          socket,
          `GET http://127.0.0.1:${plain.port}/api/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
        ).then(resolve);
      });
    });
    expect(statusOf(noToken)).toBe(401);
  });
});
