import { request as httpRequest } from 'node:http';
import type { Finding } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evidenceEvent as evidenceOf, raisedSince } from '../../../../test-support/finding-evidence.js';
import {
  addUpstream,
  echo,
  type FakeUpstream,
  fakeUpstream,
  type ProxyHarness,
  startProxyHarness,
} from './proxy-test-support.js';

// Honeytokens touched through the credential proxy, end to end: real calls through the proxy listener to a real
// loopback upstream; the proxy's own audit records are the evidence of a critical `honeytoken` finding.

describe('honeytokens through the credential proxy', () => {
  let h: ProxyHarness;
  let api: FakeUpstream;
  let decoy: Record<string, string>;
  const idle = () => h.s.node.services().anomaly!.idle();
  const findings = async () =>
    (await h.s.call({ method: 'GET', url: '/v1/alerts?rule=honeytoken' })).json().alerts as Finding[];
  const newFindings = async (before: readonly Finding[]) => {
    await idle();
    return raisedSince(before, await findings());
  };
  const evidenceEvent = (finding: Finding) => evidenceOf(h.s.storage.audit, finding);

  beforeAll(async () => {
    h = await startProxyHarness();
    // The upstream refuses any key but the real one, as a real API would refuse a decoy.
    api = await fakeUpstream((req, res, body) => {
      if (req.headers.authorization !== `Bearer ${h.key}`) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"error":"invalid api key"}');
        return;
      }
      echo(req, res, body);
    });
    const created = await h.s.call({
      method: 'POST',
      url: '/v1/honeytokens',
      payload: { path: 'kv/llm/legacy-openai', kind: 'openai' },
    });
    expect(created.statusCode, created.body).toBe(200);
    decoy = created.json().data;
    for (const [name, secret] of [
      ['llm', 'kv/llm/fake#api_key'],
      ['legacy-llm', 'kv/llm/legacy-openai#api_key'],
    ] as const) {
      await addUpstream(h, name, {
        secret,
        base_url: `http://127.0.0.1:${api.port}/v1`,
        inject: ['header:Authorization=Bearer {{value}}'],
        allow_hosts: [`127.0.0.1:${api.port}`],
      });
    }
  });
  afterAll(async () => {
    await api?.close();
    await h?.close();
  });

  it('an ordinary call records the secret it injects, and no presented value', async () => {
    const { token } = await h.task();
    const before = await findings();
    const r = await h.call('/u/llm/chat', { method: 'POST', token, body: '{}' });
    expect(r.status).toBe(200);
    expect(await newFindings(before)).toEqual([]);
    const going = (await h.proxyEvents()).filter(
      (e) => (e.details as { phase: string; upstream?: string }).phase === 'request',
    );
    expect(going.at(-1)).toMatchObject({ details: { upstream: 'llm', secret_path: 'kv/llm/fake' } });
    expect(going.at(-1)!.data).toBeUndefined();
  });

  it('a call to an upstream whose secret is a honeytoken: it goes out and fails upstream as a bad key does', async () => {
    const { token, task_id } = await h.task();
    const before = await findings();
    const r = await h.call('/u/legacy-llm/chat', { method: 'POST', token, body: '{}' });
    // What the caller sees is the upstream's own refusal of a bad key, passed through.
    expect(r.status).toBe(401);
    expect(await r.text()).toBe('{"error":"invalid api key"}');
    const raised = await newFindings(before);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ rule: 'honeytoken', severity: 'critical', subject: { task_id, role: 'agent' } });
    expect(raised[0]!.explanation).toContain('called the upstream legacy-llm through the credential proxy');
    expect(raised[0]!.explanation).toContain('kv/llm/legacy-openai');
    const event = await evidenceEvent(raised[0]!);
    expect(event).toMatchObject({
      request: { path: 'upstream/legacy-llm', action: 'use' },
      details: { phase: 'request', proxy: 'base-url', secret_path: 'kv/llm/legacy-openai' },
      auth: { task_id },
    });
  });

  it('a honeytoken value carried in a header or the query of a proxied call', async () => {
    const { token, task_id } = await h.task();
    const before = await findings();
    const inHeader = await h.call('/u/llm/chat', {
      method: 'POST',
      token,
      body: '{}',
      headers: { 'x-forwarded-key': decoy.api_key! },
    });
    const { token: other, task_id: otherId } = await h.task();
    const inQuery = await h.call(`/u/llm/search?q=hello&key=${encodeURIComponent(decoy.api_key!)}`, { token: other });
    // Both went out and were answered as any call is: nothing tells the caller the value is special.
    expect(inHeader.status).toBe(200);
    expect(inQuery.status).toBe(200);
    const raised = await newFindings(before);
    expect(raised.map((f) => f.subject.task_id).sort()).toEqual([task_id, otherId].sort());
    // One record per call carries it (the call going out), not its outcome too.
    const carrying = (await h.proxyEvents()).filter(
      (e) => (e.data as { presented_value?: string } | undefined)?.presented_value,
    );
    expect(carrying.map((e) => (e.details as { phase: string }).phase)).toEqual(['request', 'request']);
    for (const f of raised) {
      expect(f.severity).toBe('critical');
      expect(f.explanation).toContain('sent a honeytoken');
      const event = await evidenceEvent(f);
      expect(event.data.presented_value).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
      expect(JSON.stringify(event)).not.toContain(decoy.api_key);
    }
  });

  it('a honeytoken value in the body of a proxied call: seen as it streams, on the outcome record', async () => {
    const { token, task_id } = await h.task();
    const before = await findings();
    const body = JSON.stringify({ messages: [{ role: 'user', content: `my key is ${decoy.api_key} ok` }] });
    const r = await h.call('/u/llm/chat', { method: 'POST', token, body });
    expect(r.status).toBe(200);
    // Forwarded as any call is (the echo of it comes back through the redactor, which knows the key's shape).
    expect(((await r.json()) as { body: string }).body).toContain('"content":"my key is [REDACTED:');
    // The outcome is recorded once the exchange has ended, which may be just after the caller has its answer.
    const requestId = r.headers.get('x-custos-request-id');
    while (
      !(await h.proxyEvents()).some(
        (e) => e.request_id === requestId && (e.details as { phase: string }).phase === 'response',
      )
    ) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    // …and the rules see a record just after it is durable: wait until they have seen it.
    const head = (await h.s.storage.audit.head())!.seq;
    while (h.s.node.services().anomaly!.progress() < head) await new Promise((resolve) => setImmediate(resolve));
    const raised = await newFindings(before);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ severity: 'critical', subject: { task_id } });
    const event = await evidenceEvent(raised[0]!);
    expect(event.details).toMatchObject({ proxy: 'base-url', phase: 'response', upstream: 'llm' });
    expect(event.data.presented_value).toMatch(/^hmac-sha256:/);
  });

  it('forward mode: a decoy as the SDK key in the API request Authorization header', async () => {
    const plain = await fakeUpstream((req, res, body) => echo(req, res, body));
    try {
      await addUpstream(h, 'fwd', {
        base_url: `http://127.0.0.1:${plain.port}/api`,
        inject: ['header:X-Api-Key={{value}}'],
        allow_hosts: [`127.0.0.1:${plain.port}`],
      });
      const { token, task_id } = await h.task();
      const before = await findings();
      // HTTP_PROXY style: the absolute URL on the request line, the task token in Proxy-Authorization.
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: h.proxyPort(),
            path: `http://127.0.0.1:${plain.port}/api/items`,
            headers: { 'proxy-authorization': `Bearer ${token}`, authorization: `Bearer ${decoy.api_key}` },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
      const raised = await newFindings(before);
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({ severity: 'critical', subject: { task_id } });
      const event = await evidenceEvent(raised[0]!);
      expect(event.details).toMatchObject({ proxy: 'forward', upstream: 'fwd', phase: 'request' });
      expect(event.data.presented_value).toMatch(/^hmac-sha256:/);
    } finally {
      await plain.close();
    }
  });

  it('a honeytoken value presented to the proxy as the caller credential', async () => {
    const before = await findings();
    const r = await h.call('/u/llm/chat', { method: 'POST', token: decoy.api_key!, body: '{}' });
    expect(r.status).toBe(401);
    const raised = await newFindings(before);
    expect(raised).toHaveLength(1);
    expect(raised[0]!.subject.source_ip).toBeDefined();
    const event = await evidenceEvent(raised[0]!);
    expect(event.data.credential).toMatch(/^hmac-sha256:/);
    expect(event.details.proxy).toBe('base-url');
  });
});
