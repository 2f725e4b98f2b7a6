import type { Finding } from '@custos/core';
import { createEngine } from '@custos/engines';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../test-support/postgres.js';
import { fakeSecret, startTestServer, type TestServer } from './test-server.js';

// The later anomaly rules end to end: real requests through the real server
// (the audit events are the server's own), findings read back through the alerts API.

describe('anomaly rules on real requests', () => {
  let s: TestServer;
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const alerts = async (rule: string) =>
    (await ok(await s.call({ method: 'GET', url: `/v1/alerts?rule=${rule}` }))).alerts as Finding[];
  const idle = () => s.node.services().anomaly!.idle();
  const startTask = async (role: string) =>
    (await ok(await s.call({ method: 'POST', url: `/v1/roles/${role}/tasks`, payload: { ttl: '10m' } }))) as {
      token: string;
      task_id: string;
    };

  beforeAll(async () => {
    // Short warm-ups and histories, so a test can reach them.
    s = await startTestServer('sqlite', {
      anomaly: {
        rules: {
          'new-source-address': { warmupMs: 1, warmupEvents: 5 },
          // No history needed, and a floor a test reaches: the events and their counting are the server's.
          'request-burst': { minHistoryMs: 1, minRequests: 25 },
        },
      },
    });
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/app-reader',
        payload: {
          policy: 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/app/");',
        },
      }),
    );
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/worker', payload: { policies: ['app-reader'], max_ttl: '15m' } }),
    );
    await ok(
      await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/app/db', payload: { data: { v: fakeSecret() } } }),
    );
  });
  afterAll(async () => {
    await s?.close();
  });

  it('request-burst: a task reading in a tight loop', async () => {
    // First in this file: tasks started by the same operator token share its identity (`token:<accessor>`).
    const task = await startTask('worker');
    for (let i = 0; i < 24; i++) {
      expect((await s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db', token: task.token })).statusCode).toBe(
        200,
      );
    }
    await idle();
    expect(await alerts('request-burst')).toEqual([]);
    // The 25th request, refused: it counts too.
    expect((await s.call({ method: 'GET', url: '/v1/secrets/data/kv/finance/x', token: task.token })).statusCode).toBe(
      403,
    );
    await idle();
    const found = await alerts('request-burst');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ subject: { task_id: task.task_id, role: 'worker' } });
    expect(found[0]!.evidence).toHaveLength(10);
    expect(found[0]!.explanation).toMatch(/made 25 requests in the last 60 s/);
  });

  it('new-source-address: a task token presented from a new network, after warm-up', async () => {
    const task = await startTask('worker');
    const read = (remoteAddress: string) =>
      s.call({ method: 'GET', url: '/v1/secrets/data/kv/app/db', token: task.token, remoteAddress });
    // The usual network (inject's default address is 127.0.0.1), renumbered inside its /24.
    for (let i = 0; i < 6; i++) expect((await read(`127.0.0.${i + 3}`)).statusCode).toBe(200);
    await idle();
    expect(await alerts('new-source-address')).toEqual([]);
    expect((await read('203.0.113.77')).statusCode).toBe(200);
    await idle();
    const found = await alerts('new-source-address');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ subject: { task_id: task.task_id, role: 'worker', source_ip: '203.0.113.77' } });
    expect(found[0]!.explanation).toContain('203.0.113.0/24');
  });

  it('lists every rule in GET /v1/alerts/rules with its configuration', async () => {
    const { rules } = (await ok(await s.call({ method: 'GET', url: '/v1/alerts/rules' }))) as {
      rules: { rule: string; config: Record<string, unknown> }[];
    };
    const byName = new Map(rules.map((r) => [r.rule, r.config]));
    expect(byName.get('new-source-address')).toMatchObject({ ipv4Prefix: 24, ipv6Prefix: 64, warmupEvents: 5 });
    expect(byName.get('off-hours')).toMatchObject({ minHistoryMs: 14 * 86_400_000, minEvents: 200, rareShare: 0.002 });
    expect(byName.get('credential-rate')).toMatchObject({ minIssued: 20, factor: 5, windowMs: 3_600_000 });
    expect(byName.get('request-burst')).toMatchObject({ minRequests: 25, factor: 10, peakFactor: 3 });
  });
});

describe.skipIf(!hasPostgres())('credential-rate on real dynamic credentials', () => {
  let s: TestServer;
  let target: TestDatabase;
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };

  beforeAll(async () => {
    target = await createTestDatabase();
    s = await startTestServer('sqlite', {
      engineFactory: createEngine,
      anomaly: { rules: { 'credential-rate': { minHistoryMs: 1, minIssued: 4 } } },
    });
    await ok(
      await s.call({ method: 'PUT', url: '/v1/engines/pg-main', payload: { type: 'postgres', url: target.url } }),
    );
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/engines/pg-main/roles/reader',
        payload: { default_ttl: '5m', max_ttl: '1h' },
      }),
    );
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/db-issue',
        payload: {
          policy: 'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"pg-main/");',
        },
      }),
    );
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/etl', payload: { policies: ['db-issue'], max_ttl: '15m' } }),
    );
  });
  afterAll(async () => {
    await s?.close();
    await target?.drop();
  });

  it('raises credential-rate when a role is issued logins far beyond its history', async () => {
    const task = (await ok(await s.call({ method: 'POST', url: '/v1/roles/etl/tasks', payload: { ttl: '10m' } }))) as {
      token: string;
      task_id: string;
    };
    for (let i = 0; i < 4; i++) {
      await ok(await s.call({ method: 'POST', url: '/v1/creds/pg-main/reader', token: task.token, payload: {} }));
    }
    await s.node.services().anomaly!.idle();
    const { alerts } = await ok(await s.call({ method: 'GET', url: '/v1/alerts?rule=credential-rate' }));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ subject: { task_id: task.task_id, role: 'etl' } });
    expect(alerts[0].evidence).toHaveLength(4);
    expect(alerts[0].explanation).toMatch(/^Role etl was issued 4 dynamic credentials .*latest: pg-main\/reader/);
    // Ending the task drops the logins it was issued.
    await ok(await s.call({ method: 'POST', url: `/v1/tasks/${task.task_id}/revoke` }));
  });
});
