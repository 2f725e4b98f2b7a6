import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUpstream,
  echo,
  type FakeUpstream,
  fakeUpstream,
  type ProxyHarness,
  readUntil,
  startProxyHarness,
} from './proxy-test-support.js';

// The credential proxy in base-URL mode, as an agent uses it: its task token
// in, the upstream's key attached by custos on the way out, the answer
// streamed back through the redactor. Real loopback HTTP on both sides.

describe('the credential proxy, base-URL mode', () => {
  let h: ProxyHarness;
  let api: FakeUpstream;
  /** SSE: the next event is written only once the test has read the previous one. */
  let sseNext: (() => void) | undefined;
  let sseRes: ServerResponse | undefined;

  beforeAll(async () => {
    h = await startProxyHarness();
    api = await fakeUpstream((req, res, body) => {
      if (req.url?.includes('/stream/sse')) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        sseRes = res;
        let n = 0;
        sseNext = () => {
          n++;
          if (n <= 3) res.write(`event: delta\ndata: {"n":${n},"auth":"${req.headers.authorization}"}\n\n`);
          else res.end('event: done\ndata: {}\n\n');
        };
        sseNext();
        return;
      }
      echo(req, res, body);
    });
    await addUpstream(h, 'fake', {
      base_url: `http://127.0.0.1:${api.port}/v1`,
      inject: ['header:Authorization=Bearer {{value}}'],
      allow_hosts: [`127.0.0.1:${api.port}`],
    });
    await addUpstream(h, 'fake-query', {
      base_url: `http://127.0.0.1:${api.port}`,
      inject: ['query:key={{value}}', 'header:X-Api-Key={{value}}'],
      allow_hosts: [`127.0.0.1:${api.port}`],
      allow_methods: ['GET', 'POST'],
      allow_paths: ['/v1/*'],
    });
  });
  afterAll(async () => {
    await api?.close();
    await h?.close();
  });

  it('attaches the key in a header: the upstream gets it, the caller sees it redacted and never its own token forwarded', async () => {
    const { token, task_id } = await h.task();
    const r = await h.call('/u/fake/chat/completions?model=x', {
      method: 'POST',
      token,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'hello' }),
    });
    expect(r.status).toBe(200);
    const text = await r.text();
    const seen = api.seen.at(-1)!;
    // The upstream saw the key, at the base URL's path plus the caller's.
    expect(seen.headers.authorization).toBe(`Bearer ${h.key}`);
    expect(seen.url).toBe('/v1/chat/completions?model=x');
    expect(seen.body).toBe('{"prompt":"hello"}');
    expect(JSON.stringify(seen.headers)).not.toContain(token);
    expect(seen.headers['accept-encoding']).toBe('identity');
    // The caller got the echo, without the key.
    expect(text).not.toContain(h.key);
    expect(JSON.parse(text).headers.authorization).toBe('Bearer [REDACTED:upstream:fake]');
    expect(r.headers.get('x-custos-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    // Audited: before it went out and when it ended, with the task chain; no key, no token, no query.
    const events = (await h.proxyEvents()).filter((e) => e.request_id === r.headers.get('x-custos-request-id'));
    expect(events).toMatchObject([
      {
        decision: 'allow',
        status: 0,
        request: { method: 'POST', path: 'upstream/fake', action: 'use' },
        auth: { task_id, task_chain: [task_id] },
        details: { phase: 'request', upstream: 'fake', upstream_path: '/chat/completions' },
      },
      {
        decision: 'allow',
        status: 200,
        details: { phase: 'response', upstream: 'fake', bytes_in: 18 },
      },
    ]);
    expect((events[1]!.details as { bytes_out: number }).bytes_out).toBeGreaterThan(0);
    const trail = JSON.stringify(await h.proxyEvents());
    expect(trail).not.toContain(h.key);
    expect(trail).not.toContain(token);
    expect(trail).not.toContain('model=x');
  });

  it('attaches the key as a query parameter (replacing any the caller sent) and as a second header', async () => {
    const { token } = await h.task();
    const r = await h.call('/u/fake-query/v1/models?key=callers-own&limit=2', { token });
    expect(r.status).toBe(200);
    const seen = api.seen.at(-1)!;
    expect(seen.url).toBe(`/v1/models?limit=2&key=${encodeURIComponent(h.key)}`);
    expect(seen.headers['x-api-key']).toBe(h.key);
    const body = await r.text();
    expect(body).not.toContain(h.key);
    expect(body).toContain('[REDACTED:upstream:fake-query]');
  });

  it('accepts the token as Proxy-Authorization too, and strips it', async () => {
    const { token } = await h.task();
    const r = await h.call('/u/fake/x', { headers: { 'proxy-authorization': `Bearer ${token}` } });
    expect(r.status).toBe(200);
    await r.text();
    const seen = api.seen.at(-1)!;
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(seen.headers.authorization).toBe(`Bearer ${h.key}`);
  });

  it('streams server-sent events one at a time, each redacted, as the upstream writes them', async () => {
    const { token } = await h.task();
    const r = await h.call('/u/fake/stream/sse', { token, headers: { accept: 'text/event-stream' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
    let received = '';
    // Each event must arrive while the upstream is still holding the next one back:
    // the proxy passes bytes on as they come, it does not wait for the end.
    for (let n = 1; n <= 3; n++) {
      received = await readUntil(reader, received, `"n":${n}`);
      expect(received).not.toContain(`"n":${n + 1}`);
      expect(received).not.toContain(h.key);
      expect(received).toContain(`{"n":${n},"auth":"Bearer [REDACTED:upstream:fake]"}`);
      sseNext!();
    }
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value;
    }
    expect(received.endsWith('event: done\ndata: {}\n\n')).toBe(true);
    expect(sseRes?.writableEnded).toBe(true);
  });

  it('honours the task tree’s pinned version: a staged rotation mid-pipeline is invisible to it, new trees get the new key', async () => {
    const first = `fake-pinned-${Math.random().toString(36).slice(2)}`;
    await h.s.call({ method: 'PUT', url: '/v1/secrets/data/kv/llm/pinned', payload: { data: { api_key: first } } });
    await addUpstream(h, 'pinned', {
      base_url: `http://127.0.0.1:${api.port}`,
      secret: 'kv/llm/pinned#api_key',
      inject: ['header:Authorization=Bearer {{value}}'],
      allow_hosts: [`127.0.0.1:${api.port}`],
    });
    const sent = async (token: string) => {
      const r = await h.call('/u/pinned/x', { token });
      expect(await r.text()).not.toContain(first);
      return api.seen.at(-1)!.headers.authorization;
    };
    const running = await h.task();
    expect(await sent(running.token)).toBe(`Bearer ${first}`);
    const rotated = await h.s.call({ method: 'POST', url: '/v1/secrets/rotate/kv/llm/pinned' });
    expect(rotated.statusCode, rotated.body).toBe(200);
    // The running tree, and a child it spawns after the rotation, still send the version they pinned.
    expect(await sent(running.token)).toBe(`Bearer ${first}`);
    const child = await h.delegate(running.token, 'use:upstream/pinned');
    expect(await sent(child.token)).toBe(`Bearer ${first}`);
    // A new tree sends the new current version.
    const fresh = await h.task();
    const now = await sent(fresh.token);
    expect(now).not.toBe(`Bearer ${first}`);
    expect(now).toMatch(/^Bearer .{8,}/);
  });

  it('reads the key at call time: a new version is used on the next call of a new task tree', async () => {
    const next = `${h.key}-rotated`;
    await h.s.call({ method: 'PUT', url: '/v1/secrets/data/kv/llm/fake', payload: { data: { api_key: next } } });
    try {
      const { token } = await h.task();
      const r = await h.call('/u/fake/x', { token });
      await r.text();
      expect(api.seen.at(-1)!.headers.authorization).toBe(`Bearer ${next}`);
    } finally {
      await h.s.call({ method: 'PUT', url: '/v1/secrets/data/kv/llm/fake', payload: { data: { api_key: h.key } } });
    }
  });
});
