import type { AddressInfo } from 'node:net';
import type { Finding } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../../test-support/postgres.js';
import { type Backend, startTestServer, type TestServer } from '../test-server.js';
import { openEventStream } from './adversarial-support.js';

// Attack class: reading, silencing or steering the detections.
//
// Findings name identities, tasks and the secret paths they touched. Who may
// read them, who may acknowledge (silence) them, and can a caller make the
// engine raise a finding against someone else, or make a listing cost
// without bound?

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];
const ALL_ALERTS =
  'permit(principal, action, resource in Custos::Path::"sys/alerts/");\n' +
  'permit(principal, action == Custos::Action::"list", resource == Custos::Path::"sys/alerts/");';
const READ_ALERTS =
  'permit(principal, action in [Custos::Action::"list", Custos::Action::"read"], resource in Custos::Path::"sys/alerts/");';

describe.each(backends)('alerts cannot be read, silenced or steered by the wrong caller (%s)', (backend) => {
  let s: TestServer;
  let finding: Finding;
  let victim: { token: string; task_id: string };
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const startTask = async () =>
    (await ok(await s.call({ method: 'POST', url: '/v1/roles/watcher/tasks', payload: { ttl: '10m' } }))) as {
      token: string;
      task_id: string;
    };
  const operatorToken = async (policy: string) =>
    (
      await ok(
        await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: [policy], ttl: '10m' } }),
      )
    ).token as string;

  beforeAll(async () => {
    s = await startTestServer(backend);
    for (const [name, text] of [
      ['all-alerts', ALL_ALERTS],
      ['read-alerts', READ_ALERTS],
    ]) {
      await ok(await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy: text } }));
    }
    // A role whose policies grant everything on sys/alerts/: a task of it must still be refused.
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/watcher', payload: { policies: ['all-alerts'], max_ttl: '15m' } }),
    );
    // One finding to aim at: a revoked task's token used again.
    const dead = await startTask();
    await ok(await s.call({ method: 'POST', url: `/v1/tasks/${dead.task_id}/revoke` }));
    await s.call({ method: 'GET', url: '/v1/alerts', token: dead.token });
    await s.node.services().anomaly!.idle();
    [finding] = (await ok(await s.call({ method: 'GET', url: '/v1/alerts' }))).alerts as Finding[];
    expect(finding).toBeDefined();
    victim = await startTask();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('refuses every alert route without a token', async () => {
    for (const [method, url] of [
      ['GET', '/v1/alerts'],
      ['GET', '/v1/alerts/rules'],
      ['GET', `/v1/alerts/${finding.id}`],
      ['POST', `/v1/alerts/${finding.id}/ack`],
    ] as const) {
      const response = await s.call({ method, url, token: null });
      expect(response.statusCode, url).toBe(401);
      expect(response.body).not.toContain(finding.subject.task_id!);
    }
  });

  it('a task cannot list, read or acknowledge alerts, nor read the rules’ thresholds, whatever its policies grant', async () => {
    for (const [method, url] of [
      ['GET', '/v1/alerts'],
      ['GET', '/v1/alerts/rules'],
      ['GET', `/v1/alerts/${finding.id}`],
      ['POST', `/v1/alerts/${finding.id}/ack`],
    ] as const) {
      const response = await s.call({ method, url, token: victim.token });
      expect(response.statusCode, url).toBe(403);
    }
    expect((await ok(await s.call({ method: 'GET', url: `/v1/alerts/${finding.id}` }))).state).toBe('open');
  });

  it('a task subscribed to the event stream never hears of a finding, even one about itself', async () => {
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
    const listener = await startTask();
    const open = (token: string) => openEventStream(base, token);
    const task = await open(listener.token);
    const operator = await open(s.rootToken);
    // The listening task's own sibling: started, revoked, its token used again.
    const dead = await startTask();
    await ok(await s.call({ method: 'POST', url: `/v1/tasks/${dead.task_id}/revoke` }));
    await s.call({ method: 'GET', url: '/v1/alerts', token: dead.token });
    // The operator hears of it; by then the bus has told every subscriber it would tell.
    await operator.until('alert.raised');
    await s.node.services().anomaly!.idle();
    task.stop();
    operator.stop();
    expect(task.state.text).not.toContain('alert.raised');
  });

  it('an operator who may read alerts may not acknowledge them (admin on the alert is needed)', async () => {
    const reader = await operatorToken('read-alerts');
    expect((await s.call({ method: 'GET', url: '/v1/alerts', token: reader })).statusCode).toBe(200);
    expect((await s.call({ method: 'GET', url: `/v1/alerts/${finding.id}`, token: reader })).statusCode).toBe(200);
    const ack = await s.call({ method: 'POST', url: `/v1/alerts/${finding.id}/ack`, token: reader });
    expect(ack.statusCode).toBe(403);
    expect((await ok(await s.call({ method: 'GET', url: `/v1/alerts/${finding.id}` }))).state).toBe('open');
    // With admin on sys/alerts/ it may.
    const admin = await operatorToken('all-alerts');
    expect((await s.call({ method: 'POST', url: `/v1/alerts/${finding.id}/ack`, token: admin })).statusCode).toBe(200);
  });

  it('caps a page: more than 100 per page, a bad cursor or an unknown filter is refused', async () => {
    for (const query of [
      'limit=101',
      'limit=999',
      'limit=0',
      'limit=-1',
      'cursor=..%2F',
      'state=closed',
      'severity=x',
      'path=kv/',
    ]) {
      const response = await s.call({ method: 'GET', url: `/v1/alerts?${query}` });
      expect(response.statusCode, query).toBe(400);
    }
    expect((await s.call({ method: 'GET', url: '/v1/alerts?limit=100' })).statusCode).toBe(200);
  });

  it('a forged token naming another task raises nothing against that task', async () => {
    // A revoked task nobody has used since: a genuine use of its token would raise a finding.
    const target = await startTask();
    await ok(await s.call({ method: 'POST', url: `/v1/tasks/${target.task_id}/revoke` }));
    const aboutTarget = async () =>
      ((await ok(await s.call({ method: 'GET', url: '/v1/alerts?rule=dead-task-token' }))).alerts as Finding[]).filter(
        (a) => a.subject.task_id === target.task_id,
      );
    // The victim's real token with its task id swapped for the target's: the signature no longer verifies.
    const [header, payload, signature] = victim.token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, task_id: target.task_id })).toString('base64url')}.${signature}`;
    for (let i = 0; i < 3; i++) {
      expect((await s.call({ method: 'GET', url: '/v1/alerts', token: forged })).statusCode).toBe(401);
    }
    await s.node.services().anomaly!.idle();
    expect(await aboutTarget()).toEqual([]);
    // The target's genuine token does raise one: the rule was listening.
    await s.call({ method: 'GET', url: '/v1/alerts', token: target.token });
    await s.node.services().anomaly!.idle();
    expect(await aboutTarget()).toHaveLength(1);
  });
});

describe.each(backends)('someone with database write access cannot forge or alter a finding (%s)', (backend) => {
  it('refuses a finding whose bytes were changed or moved to another id, and a forged progress', async () => {
    const s = await startTestServer(backend);
    try {
      const services = s.node.services();
      await okBody(
        await s.call({
          method: 'PUT',
          url: '/v1/policies/p',
          payload: { policy: 'forbid(principal, action, resource);' },
        }),
      );
      await okBody(await s.call({ method: 'PUT', url: '/v1/roles/r', payload: { policies: ['p'], max_ttl: '15m' } }));
      for (let i = 0; i < 2; i++) {
        const t = await okBody(await s.call({ method: 'POST', url: '/v1/roles/r/tasks', payload: { ttl: '5m' } }));
        await okBody(await s.call({ method: 'POST', url: `/v1/tasks/${t.task_id}/revoke` }));
        await s.call({ method: 'GET', url: '/v1/alerts', token: t.token });
      }
      await services.anomaly!.idle();
      const [a, b] = (await okBody(await s.call({ method: 'GET', url: '/v1/alerts' }))).alerts as Finding[];
      const entries = services.storage.entries;
      const rowA = (await entries.get('alert', a!.id))!;
      // One bit flipped: the AEAD refuses it; the API answers an integrity error, never the altered finding.
      const flipped = Uint8Array.from(rowA.value);
      flipped[flipped.length - 1]! ^= 1;
      await entries.put('alert', a!.id, flipped);
      const altered = await s.call({ method: 'GET', url: `/v1/alerts/${a!.id}` });
      expect(altered.json().error.code).toBe('CUSTOS_ERR_INTEGRITY');
      // B's bytes under A's id (to pass one finding off as another): bound to its id, refused.
      await entries.put('alert', a!.id, (await entries.get('alert', b!.id))!.value);
      expect((await s.call({ method: 'GET', url: `/v1/alerts/${a!.id}` })).json().error.code).toBe(
        'CUSTOS_ERR_INTEGRITY',
      );
      // The engine's progress cannot be moved on by writing a plain value.
      await entries.put('alert.cursor', 'engine', new TextEncoder().encode(JSON.stringify({ seq: 1e9 })));
      await expect(services.alerts.readCursor()).rejects.toMatchObject({ code: 'CUSTOS_ERR_INTEGRITY' });
    } finally {
      await s.close();
    }
  });
});

describe('a flood of refusals cannot make custos store findings without bound', () => {
  it('caps each rule at its budget of findings per minute, from any number of source addresses', async () => {
    // A hair-trigger spike rule, so every address "spikes": the budget is what holds.
    const s = await startTestServer('sqlite', {
      anomaly: {
        maxFindingsPerMinute: 3,
        rules: { 'denied-spike': { minHistoryMs: 0, minDenied: 2, factor: 1 } },
      },
    });
    try {
      for (let a = 0; a < 20; a++) {
        for (let i = 0; i < 3; i++) {
          const response = await s.call({
            method: 'GET',
            url: '/v1/secrets/data/kv/x',
            token: `cus_${'A'.repeat(43)}`,
            remoteAddress: `198.51.100.${a + 1}`,
          });
          expect(response.statusCode).toBe(401);
        }
      }
      await s.node.services().anomaly!.idle();
      const { alerts } = (await s.call({ method: 'GET', url: '/v1/alerts?rule=denied-spike' })).json();
      expect(alerts).toHaveLength(3);
      const stats = (await s.call({ method: 'GET', url: '/v1/alerts/rules' })).json();
      expect(stats.rules.find((r: { rule: string }) => r.rule === 'denied-spike').suppressed).toBe(17);
    } finally {
      await s.close();
    }
  });
});

async function okBody(response: Awaited<ReturnType<TestServer['call']>>) {
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}
