import type { Finding } from '@custos/core';
import { createEngine } from '@custos/engines';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  postgresRoleExists as databaseUserExists,
  hasPostgres,
  type TestDatabase,
} from '../../../test-support/postgres.js';
import { auditEvents, fakeSecret, startTestServer, type TestServer } from './test-server.js';

// Automatic quarantine end to end: a real rule fires on the server's own
// audit events, its action runs, and what it did is seen where it matters —
// logins refused, a task tree's tokens refused, its database users dropped.

/** A rule a test reaches in a few requests: a fresh identity's burst, from its first window. */
const burst = { minHistoryMs: 1, minRequests: 6 };

const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
};

async function bootstrapLogin(s: TestServer, role: string): Promise<Awaited<ReturnType<TestServer['call']>>> {
  const { token } = await ok(await s.call({ method: 'POST', url: `/v1/roles/${role}/bootstrap`, payload: {} }));
  return s.call({ method: 'POST', url: '/v1/auth/bootstrap/login', token: null, payload: { token, ttl: '10m' } });
}

async function findings(s: TestServer, rule: string): Promise<Finding[]> {
  await s.node.services().anomaly!.idle();
  return (await ok(await s.call({ method: 'GET', url: `/v1/alerts?rule=${rule}` }))).alerts as Finding[];
}

describe('suspend-role: a rule fires, the role is suspended, an operator resumes it', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('sqlite', {
      anomaly: { rules: { 'request-burst': burst }, actions: { rules: { 'request-burst': ['suspend-role'] } } },
    });
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/burst-reader',
        payload: { policy: 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/b/");' },
      }),
    );
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/looper', payload: { policies: ['burst-reader'], max_ttl: '15m' } }),
    );
    await ok(await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/b/key', payload: { data: { v: fakeSecret() } } }));
  });
  afterAll(async () => {
    await s?.close();
  });

  it('refuses the next login with CUSTOS_ERR_SUSPENDED until `role resume`, and says what it did', async () => {
    const task = (await ok(await bootstrapLogin(s, 'looper'))) as { token: string; task_id: string };
    for (let i = 0; i < burst.minRequests; i++) {
      await s.call({ method: 'GET', url: '/v1/secrets/data/kv/b/key', token: task.token });
    }
    const [finding, ...more] = await findings(s, 'request-burst');
    expect(more).toEqual([]);
    expect(finding?.subject).toMatchObject({ task_id: task.task_id, role: 'looper' });

    const refused = await bootstrapLogin(s, 'looper');
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('CUSTOS_ERR_SUSPENDED');

    // What was done, on the finding and on the role.
    const shown = (await ok(await s.call({ method: 'GET', url: `/v1/alerts/${finding!.id}` }))) as Finding;
    expect(shown.actions).toEqual([
      expect.objectContaining({ action: 'suspend-role', outcome: 'done', attempts: 1, target: { role: 'looper' } }),
    ]);
    const role = await ok(await s.call({ method: 'GET', url: '/v1/roles/looper' }));
    expect(role.suspended).toMatchObject({
      by: `alert:${finding!.id}`,
      finding_id: finding!.id,
      rule: 'request-burst',
    });
    // Its own audit event, naming the finding and the rule; no secret.
    const audited = (await auditEvents(s.storage)).filter((e) => e.type === 'quarantine');
    expect(audited).toEqual([
      expect.objectContaining({
        kind: 'suspend_role',
        details: expect.objectContaining({ finding_id: finding!.id, rule: 'request-burst', outcome: 'done' }),
      }),
    ]);
    expect(JSON.stringify(audited)).not.toContain(task.token);

    await ok(await s.call({ method: 'POST', url: '/v1/roles/looper/resume', payload: {} }));
    const again = await bootstrapLogin(s, 'looper');
    expect(again.statusCode, again.body).toBe(200);
    // The finding acted once: raised and stored once, its actions claimed once.
    expect((await auditEvents(s.storage)).filter((e) => e.type === 'quarantine')).toHaveLength(1);
  });
});

describe.skipIf(!hasPostgres())('revoke-task-tree: a child misbehaves, its whole tree is revoked', () => {
  let s: TestServer;
  let target: TestDatabase;
  beforeAll(async () => {
    target = await createTestDatabase();
    s = await startTestServer('sqlite', {
      engineFactory: createEngine,
      anomaly: { rules: { 'request-burst': burst }, actions: { rules: { 'request-burst': ['revoke-task-tree'] } } },
    });
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/db-agent',
        payload: {
          policy:
            'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"pg-q/");\n' +
            'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
        },
      }),
    );
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/roles/db-agent',
        payload: { policies: ['db-agent'], max_ttl: '15m', max_depth: 2 },
      }),
    );
    await ok(await s.call({ method: 'PUT', url: '/v1/engines/pg-q', payload: { type: 'postgres', url: target.url } }));
    await ok(await s.call({ method: 'PUT', url: '/v1/engines/pg-q/roles/reader', payload: { default_ttl: '5m' } }));
  });
  afterAll(async () => {
    await s?.close();
    await target?.drop();
  });

  it("refuses the root's and the sibling's tokens and drops the tree's dynamic PostgreSQL users", async () => {
    const root = (await ok(await bootstrapLogin(s, 'db-agent'))) as { token: string; task_id: string };
    const child = (await ok(
      await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: root.token, payload: { ttl: '5m' } }),
    )) as { token: string; task_id: string };
    const sibling = (await ok(
      await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: root.token, payload: { ttl: '5m' } }),
    )) as { token: string; task_id: string };
    const siblingUser = (
      await ok(await s.call({ method: 'POST', url: '/v1/creds/pg-q/reader', token: sibling.token, payload: {} }))
    ).username as string;
    expect(await databaseUserExists(siblingUser)).toBe(true);
    // The child loops (its identity is the root's: bootstrap logins are one identity per tree).
    const before = await findings(s, 'request-burst');
    for (let i = 0; i < burst.minRequests; i++) {
      await s.call({ method: 'GET', url: `/v1/tasks/${child.task_id}`, token: child.token });
    }
    const raised = (await findings(s, 'request-burst')).filter((f) => !before.some((b) => b.id === f.id));
    expect(raised).toHaveLength(1);
    const shown = (await ok(await s.call({ method: 'GET', url: `/v1/alerts/${raised[0]!.id}` }))) as Finding;
    expect(shown.actions).toEqual([
      expect.objectContaining({
        action: 'revoke-task-tree',
        outcome: 'done',
        target: { task_id: root.task_id, role: 'db-agent' },
      }),
    ]);
    for (const token of [root.token, child.token, sibling.token]) {
      const refused = await s.call({ method: 'GET', url: `/v1/tasks/${root.task_id}`, token });
      expect(refused.statusCode).toBe(401);
    }
    expect(await databaseUserExists(siblingUser)).toBe(false);
    const task = await ok(await s.call({ method: 'GET', url: `/v1/tasks/${root.task_id}` }));
    expect(task).toMatchObject({ state: 'revoked', ended_by: root.task_id });
    expect((await auditEvents(s.storage)).filter((e) => e.type === 'quarantine')).toEqual([
      expect.objectContaining({
        kind: 'revoke_task_tree',
        details: expect.objectContaining({ finding_id: raised[0]!.id, task_id: root.task_id, outcome: 'done' }),
      }),
    ]);
  });
});
