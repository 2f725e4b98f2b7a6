import type { Finding } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUpstream,
  echo,
  type FakeUpstream,
  fakeUpstream,
  type ProxyHarness,
  startProxyHarness,
} from './proxy-test-support.js';

// first-access on upstreams end to end: real calls through the proxy listener to a real loopback upstream,
// the proxy's own audit records, the finding read back through the alerts API.

describe('first-access on upstreams through the proxy', () => {
  let h: ProxyHarness;
  let api: FakeUpstream;

  beforeAll(async () => {
    // A short warm-up a test can reach; the events are the proxy's own.
    h = await startProxyHarness({}, [], false, { rules: { 'first-access': { warmupMs: 1, warmupEvents: 3 } } });
    api = await fakeUpstream((req, res, body) => echo(req, res, body));
    for (const name of ['llm', 'payments']) {
      await addUpstream(h, name, {
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

  it('raises first-access when a warmed-up task calls an upstream it never called, once', async () => {
    const { token, task_id } = await h.task();
    for (let i = 0; i < 4; i++)
      expect((await h.call('/u/llm/chat', { method: 'POST', token, body: '{}' })).status).toBe(200);
    const idle = () => h.s.node.services().anomaly!.idle();
    const alerts = async () =>
      (await h.s.call({ method: 'GET', url: '/v1/alerts?rule=first-access' })).json().alerts as Finding[];
    await idle();
    expect(await alerts()).toEqual([]);
    for (let i = 0; i < 2; i++)
      expect((await h.call('/u/payments/charge', { method: 'POST', token, body: '{}' })).status).toBe(200);
    await idle();
    const found = await alerts();
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ subject: { task_id, role: 'agent' } });
    expect(found[0]!.explanation).toMatch(/never used upstream\/payments before \(action use, through the proxy\)/);
    // The evidence is the proxy's record of the call going out, before anything was sent.
    const events = await h.proxyEvents();
    const evidence = events.find(
      (e) => e.request_id === found[0]!.evidence[0]!.request_id && (e.details as { phase: string }).phase === 'request',
    );
    expect(evidence).toMatchObject({ request: { path: 'upstream/payments', action: 'use', route: '/u/:name/*' } });
  });
});
