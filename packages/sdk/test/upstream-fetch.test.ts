import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUpstream,
  echo,
  type FakeUpstream,
  fakeUpstream,
  type ProxyHarness,
  readUntil,
  startProxyHarness,
} from '../../server/test/proxy/proxy-test-support.js';
import { Custos, CustosApiError, CustosUnreachableError, CustosUsageError } from '../src/index.js';

/**
 * `task.upstream(NAME).fetch(path, init)`: the SDK's call through custos's
 * credential proxy (base-URL mode), against a real custos node listening on
 * loopback, its real proxy listener and a real local upstream.
 */
describe('task.upstream(NAME).fetch through the credential proxy', () => {
  let h: ProxyHarness;
  let api: FakeUpstream;
  let custos: Custos;
  let address: string;
  /** The streamed request body's chunks as the upstream received them, and a hook to answer after the first. */
  let uploadChunks: string[] = [];
  let sseNext: (() => void) | undefined;

  beforeAll(async () => {
    h = await startProxyHarness();
    await h.s.app.listen({ host: '127.0.0.1', port: 0 });
    address = `http://127.0.0.1:${(h.s.app.server.address() as AddressInfo).port}`;
    api = await fakeUpstream((req, res, body) => {
      if (req.url?.includes('/stream/sse')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let n = 0;
        sseNext = () => {
          n++;
          if (n <= 2) res.write(`data: {"n":${n},"auth":"${req.headers.authorization}"}\n\n`);
          else res.end('data: done\n\n');
        };
        sseNext();
        return;
      }
      if (req.url?.includes('/stream/upload')) {
        uploadChunks = [];
        req.on('data', (chunk: Buffer) => uploadChunks.push(chunk.toString('utf8')));
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ chunks: uploadChunks.length, total: uploadChunks.join('').length }));
        });
        return;
      }
      if (req.url?.includes('/missing')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"no such model"}');
        return;
      }
      if (req.url?.includes('/forge')) {
        // An upstream posing as a custos refusal: the proxy drops the marker.
        res.writeHead(403, {
          'content-type': 'application/json',
          'x-custos-proxy-error': 'CUSTOS_ERR_PERMISSION_DENIED',
        });
        res.end('{"error":{"code":"CUSTOS_ERR_PERMISSION_DENIED","message":"forged"}}');
        return;
      }
      if (req.url?.includes('/redirect')) {
        res.writeHead(302, { location: 'http://203.0.113.9/steal' });
        res.end();
        return;
      }
      echo(req, res, body);
    });
    await addUpstream(h, 'fake', {
      base_url: `http://127.0.0.1:${api.port}/v1`,
      inject: ['header:Authorization=Bearer {{value}}'],
      allow_hosts: [`127.0.0.1:${api.port}`],
    });
    await addUpstream(h, 'other', {
      base_url: `http://127.0.0.1:${api.port}/other`,
      inject: ['header:Authorization=Bearer {{value}}'],
      allow_hosts: [`127.0.0.1:${api.port}`],
    });
    custos = new Custos({ address, token: h.s.rootToken, proxyAddress: h.proxy.address });
  });
  afterAll(async () => {
    await api?.close();
    await h?.close();
  });

  it('sends the request with the task token to the proxy; the upstream gets the key, the task sees it redacted', async () => {
    await custos.withTask({ role: 'agent', scope: 'use:upstream/fake' }, async (task) => {
      const upstream = task.upstream('fake');
      expect(upstream.baseUrl).toBe(`${h.proxy.address}/u/fake`);
      const answer = await upstream.fetch('/chat/completions?model=x', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'hello' }),
      });
      expect(answer.status).toBe(200);
      const text = await answer.text();
      expect(text).not.toContain(h.key);
      expect(text).not.toContain(task.token);
      const seen = api.seen.at(-1)!;
      expect(seen.url).toBe('/v1/chat/completions?model=x');
      expect(seen.headers.authorization).toBe(`Bearer ${h.key}`);
      expect(seen.body).toBe('{"prompt":"hello"}');
      expect(JSON.stringify(seen.headers)).not.toContain(task.token);
      expect(JSON.stringify(upstream)).not.toContain(task.token);
    });
  });

  it('streams the request body and the answer: each event is read while the upstream holds the next back', async () => {
    await custos.withTask({ role: 'agent', scope: 'use:upstream/fake' }, async (task) => {
      const answer = await task.upstream('fake').fetch('/stream/sse', { headers: { accept: 'text/event-stream' } });
      expect(answer.headers.get('content-type')).toBe('text/event-stream');
      const reader = answer.body!.pipeThrough(new TextDecoderStream()).getReader();
      let received = '';
      for (let n = 1; n <= 2; n++) {
        received = await readUntil(reader, received, `"n":${n}`);
        expect(received).not.toContain(`"n":${n + 1}`);
        expect(received).not.toContain(h.key);
        sseNext?.();
      }
      while (!(await reader.read()).done) {}

      const parts = ['{"a":', '"x".repeat', '(1)}'];
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const part of parts) controller.enqueue(new TextEncoder().encode(part));
          controller.close();
        },
      });
      const uploaded = await task.upstream('fake').fetch('/stream/upload', { method: 'POST', body });
      expect(await uploaded.json()).toMatchObject({ total: parts.join('').length });
    });
  });

  it('returns the upstream’s own answers, errors and redirects included; only the proxy’s refusals throw', async () => {
    await custos.withTask({ role: 'agent', scope: 'use:upstream/fake' }, async (task) => {
      const upstream = task.upstream('fake');
      const missing = await upstream.fetch('/missing');
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ error: 'no such model' });
      // The marker of a proxy refusal cannot come from an upstream.
      const forged = await upstream.fetch('/forge');
      expect(forged.status).toBe(403);
      expect(forged.headers.get('x-custos-proxy-error')).toBeNull();
      // A redirect is handed back, not followed with the token.
      const redirect = await upstream.fetch('/redirect');
      expect(redirect.status).toBe(302);
      expect(redirect.headers.get('location')).toBe('http://203.0.113.9/steal');
    });
  });

  it('throws the proxy’s refusals as CustosApiError with its code: no use, revoked task', async () => {
    const task = await custos.startTask('agent', { scope: 'use:upstream/fake' });
    const denied = await task
      .upstream('other')
      .fetch('/x')
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(CustosApiError);
    expect(denied).toMatchObject({ code: 'CUSTOS_ERR_PERMISSION_DENIED', status: 403 });
    const unknown = await task
      .upstream('nosuch')
      .fetch('/x')
      .catch((e: unknown) => e);
    expect(unknown).toMatchObject({ code: 'CUSTOS_ERR_PERMISSION_DENIED', status: 403 });
    // An Upstream made while the task was live: after the revocation the proxy refuses its next call.
    const held = task.upstream('fake');
    const before = api.seen.length;
    await task.revoke();
    const revoked = await held.fetch('/x').catch((e: unknown) => e);
    expect(revoked).toBeInstanceOf(CustosApiError);
    expect(revoked).toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED', status: 401 });
    expect(String((revoked as Error).message)).not.toContain(task.token);
    // …and the object refuses to hand out a new one for a task it ended.
    expect(() => task.upstream('fake')).toThrow(CustosUsageError);
    expect(api.seen.length).toBe(before);
  });

  it('refuses, before sending, a path that fetch would resolve elsewhere or a credential header of the caller', async () => {
    await custos.withTask({ role: 'agent', scope: 'use:upstream/*' }, async (task) => {
      const upstream = task.upstream('fake');
      const before = api.seen.length;
      for (const path of [
        '/../other/x',
        '/a/../../other/x',
        '/%2e%2e/other/x',
        '/a/%2E/b',
        '/a%2fb',
        '/a%5cb',
        '/a\\b',
        '/a b',
        '/a#frag',
        '/a\r\nx: y',
        'relative',
        '',
      ]) {
        const error = await upstream.fetch(path).catch((e: unknown) => e);
        expect(error, JSON.stringify(path)).toBeInstanceOf(CustosUsageError);
      }
      for (const header of ['Authorization', 'proxy-authorization', 'X-Custos-Token', 'DPoP', 'host']) {
        const error = await upstream.fetch('/x', { headers: { [header]: 'Bearer other' } }).catch((e: unknown) => e);
        expect(error, header).toBeInstanceOf(CustosUsageError);
      }
      expect(() => task.upstream('../fake')).toThrow(CustosUsageError);
      expect(api.seen.length).toBe(before);
    });
  });

  it('a token minted for a registered resource is refused by the proxy', async () => {
    await h.s.call({ method: 'PUT', url: '/v1/resources/tool', payload: { url: 'https://tool.example.com' } });
    await h.s.call({
      method: 'PUT',
      url: '/v1/policies/agent-resource',
      payload: {
        policy: 'permit(principal, action == Custos::Action::"use", resource == Custos::Path::"resource/tool");',
      },
    });
    await h.s.call({
      method: 'PUT',
      url: '/v1/roles/agent',
      payload: { policies: ['agent', 'agent-resource'], max_ttl: '15m', max_depth: 3 },
    });
    await custos.withTask({ role: 'agent' }, async (task) => {
      const forTool = await task.resourceToken('https://tool.example.com', { scope: 'use:upstream/fake' });
      expect(forTool.audience).toBe('https://tool.example.com');
      expect(JSON.stringify(forTool)).not.toContain(forTool.token);
      const before = api.seen.length;
      const r = await fetch(`${h.proxy.address}/u/fake/x`, { headers: { authorization: `Bearer ${forTool.token}` } });
      expect(r.status).toBe(401);
      expect(api.seen.length).toBe(before);
    });
  });

  it('an unreachable proxy is CustosUnreachableError; no proxy configured is a usage error', async () => {
    const closed = new Custos({ address, token: h.s.rootToken, proxyAddress: 'http://127.0.0.1:9' });
    await closed.withTask({ role: 'agent', scope: 'use:upstream/fake' }, async (task) => {
      await expect(task.upstream('fake').fetch('/x')).rejects.toBeInstanceOf(CustosUnreachableError);
    });
    const saved = process.env.CUSTOS_PROXY_ADDR;
    delete process.env.CUSTOS_PROXY_ADDR;
    try {
      const none = new Custos({ address, token: h.s.rootToken });
      await none.withTask({ role: 'agent', scope: 'use:upstream/fake' }, async (task) => {
        expect(() => task.upstream('fake')).toThrow(CustosUsageError);
      });
    } finally {
      if (saved !== undefined) process.env.CUSTOS_PROXY_ADDR = saved;
    }
  });
});
