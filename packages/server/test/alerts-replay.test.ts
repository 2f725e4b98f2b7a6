import type { Finding } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents, startTestServer, type TestServer } from './test-server.js';

// Replay and delegation-shape end to end: real delegations through the real
// server (both forms: the JSON route and the RFC 8693 exchange), the audit
// records they leave, the live finding, and a replay over the same history
// that reports it again — with the same id — without storing anything.

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

describe('alerts replay and delegation-shape (sqlite)', () => {
  let s: TestServer;
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const start = async () =>
    (await ok(await s.call({ method: 'POST', url: '/v1/roles/coord/tasks', payload: { ttl: '10m' } }))) as {
      token: string;
      task_id: string;
    };
  const delegate = async (token: string, ttl = '5m') =>
    (await ok(await s.call({ method: 'POST', url: '/v1/tasks/delegate', token, payload: { ttl } }))) as {
      token: string;
      task_id: string;
    };
  const exchange = async (token: string) =>
    (await ok(
      await s.call({
        method: 'POST',
        url: '/v1/oauth/token',
        token: null,
        payload: { grant_type: EXCHANGE, subject_token: token, subject_token_type: ACCESS_TOKEN, ttl: '4m' },
      }),
    )) as { access_token: string; task_id: string };

  beforeAll(async () => {
    s = await startTestServer('sqlite', {
      // A short history is enough here; the defaults want 50 delegations over a day.
      anomaly: { rules: { 'delegation-shape': { minDelegations: 6, minHistoryMs: 0 } } },
    });
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/coord',
        payload: {
          policy: 'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
        },
      }),
    );
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/roles/coord',
        payload: { policies: ['coord'], max_ttl: '15m', max_depth: 4 },
      }),
    );
  });
  afterAll(async () => {
    await s?.close();
  });

  it('records each delegation with its parent and chain, and raises delegation-shape when a tree goes deeper', async () => {
    // The usual tree, three times: a root with two workers, the first of which delegates once more.
    for (let i = 0; i < 3; i++) {
      const root = await start();
      const worker = await delegate(root.token);
      await delegate(root.token);
      await exchange(worker.token);
    }
    const usual = await auditEvents(s.storage);
    const delegations = usual.filter(
      (e) => (e.details as { phase?: string }).phase === 'response' && (e.auth as { task_id?: string }).task_id,
    );
    // What the rule reads: the parent (auth.task_id), its chain from the root, the issued child.
    for (const d of delegations.filter((e) => (e.details as { issued_task?: string }).issued_task)) {
      const auth = d.auth as { task_id: string; task_chain: string[]; role: string };
      expect(auth.role).toBe('coord');
      expect(auth.task_chain.at(-1)).toBe(auth.task_id);
    }
    await s.node.services().anomaly!.idle();
    expect((await ok(await s.call({ method: 'GET', url: '/v1/alerts?rule=delegation-shape' }))).alerts).toEqual([]);

    // Then a chain one level deeper than any before.
    const root = await start();
    const a = await delegate(root.token);
    const b = await exchange(a.token);
    const c = await delegate(b.access_token, '3m');
    await s.node.services().anomaly!.idle();
    const [live] = (await ok(await s.call({ method: 'GET', url: '/v1/alerts?rule=delegation-shape' })))
      .alerts as Finding[];
    expect(live).toMatchObject({ rule: 'delegation-shape', subject: { task_id: b.task_id, role: 'coord' } });
    expect(live!.explanation).toContain('a child at depth 3 (its deepest before: 2)');
    expect(c.task_id).toBeDefined();

    // The replay over the same history reports the same finding (same id: rule and record), storing nothing more.
    const before = (await ok(await s.call({ method: 'GET', url: '/v1/alerts' }))).alerts as Finding[];
    const report = await ok(
      await s.call({ method: 'POST', url: '/v1/alerts/replay', payload: { since: '1h', rules: ['delegation-shape'] } }),
    );
    expect(report).toMatchObject({
      complete: true,
      findings_total: 1,
      rules: [{ rule: 'delegation-shape', findings: 1 }],
    });
    expect(report.findings[0].id).toBe(live!.id);
    expect(report.findings[0].explanation).toBe(live!.explanation);
    expect((await ok(await s.call({ method: 'GET', url: '/v1/alerts' }))).alerts).toEqual(before);
    // And the replay itself is in the audit trail, as an admin action on sys/alerts/replay.
    const audited = (await auditEvents(s.storage)).filter(
      (e) => (e.request as { route?: string }).route === '/v1/alerts/replay',
    );
    expect(audited.at(-1)).toMatchObject({ status: 200, request: { path: 'sys/alerts/replay', action: 'admin' } });
  });
});
