import type { Storage } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../test-server.js';
import { type WriteLog, watchWrites } from './adversarial-support.js';

// Attack class: abusing the replay of the detections (`POST /v1/alerts/replay`).
//
// A replay shows every finding the rules would have raised (who did what,
// on which paths) and holds the node's CPU for minutes. Who may start one,
// can a caller make it unbounded, run many at once, or make it store,
// announce or act on anything? (Storage plays no part: one backend.)

const ALL_ALERTS =
  'permit(principal, action, resource in Custos::Path::"sys/alerts/");\n' +
  'permit(principal, action == Custos::Action::"list", resource == Custos::Path::"sys/alerts/");';
/**
 * A gate on the audit store's time lookup, the first read of a replay: a
 * replay that reaches it waits until the test opens it, so "one is running"
 * is a fact, not a race.
 */
function gatedReplays() {
  let open: Promise<void> = Promise.resolve();
  let release: () => void = () => undefined;
  let entered: () => void = () => undefined;
  const state = {
    /** Closes the gate; resolves once a replay is waiting at it. */
    hold(): Promise<void> {
      open = new Promise((resolve) => {
        release = resolve;
      });
      return new Promise((resolve) => {
        entered = resolve;
      });
    },
    release: () => release(),
    wrap: (storage: Storage): Storage =>
      new Proxy(storage, {
        get(target, property) {
          const value = Reflect.get(target, property, target) as unknown;
          if (property !== 'audit') return typeof value === 'function' ? value.bind(target) : value;
          const audit = value as Storage['audit'];
          return new Proxy(audit, {
            get(a, name) {
              if (name === 'firstSeqSince') {
                return async (ts: string) => {
                  entered();
                  await open;
                  return a.firstSeqSince(ts);
                };
              }
              const member = Reflect.get(a, name, a) as unknown;
              return typeof member === 'function' ? member.bind(a) : member;
            },
          });
        },
      }),
  };
  return state;
}

const READ_ALERTS =
  'permit(principal, action in [Custos::Action::"list", Custos::Action::"read"], resource in Custos::Path::"sys/alerts/");';

describe('the replay of detections cannot be read, hogged or turned into action by the wrong caller', () => {
  let s: TestServer;
  let writes: WriteLog;
  const gate = gatedReplays();
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const operatorToken = async (policy: string) =>
    (
      await ok(
        await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: [policy], ttl: '10m' } }),
      )
    ).token as string;
  const replay = (payload: unknown, token?: string | null) =>
    s.call({
      method: 'POST',
      url: '/v1/alerts/replay',
      payload: payload as object,
      ...(token !== undefined ? { token } : {}),
    });

  beforeAll(async () => {
    const watch = watchWrites();
    writes = watch.log;
    s = await startTestServer('sqlite', { wrapStorage: (storage) => gate.wrap(watch.wrap(storage)) });
    for (const [name, text] of [
      ['all-alerts', ALL_ALERTS],
      ['read-alerts', READ_ALERTS],
    ]) {
      await ok(await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy: text } }));
    }
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/watcher', payload: { policies: ['all-alerts'], max_ttl: '15m' } }),
    );
    // Something for the rules to find: a revoked task's token used again (a stored, open finding).
    const dead = await ok(await s.call({ method: 'POST', url: '/v1/roles/watcher/tasks', payload: { ttl: '5m' } }));
    await ok(await s.call({ method: 'POST', url: `/v1/tasks/${dead.task_id}/revoke` }));
    await s.call({ method: 'GET', url: '/v1/alerts', token: dead.token });
    await s.node.services().anomaly!.idle();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('refuses a replay without a token, to a task whatever its policies grant, and to an operator who may only read alerts', async () => {
    expect((await replay({ since: '1h' }, null)).statusCode).toBe(401);
    const task = await ok(await s.call({ method: 'POST', url: '/v1/roles/watcher/tasks', payload: { ttl: '5m' } }));
    const asTask = await replay({ since: '1h' }, task.token);
    expect(asTask.statusCode).toBe(403);
    expect(asTask.body).not.toContain('dead-task-token');
    const reader = await operatorToken('read-alerts');
    expect((await replay({ since: '1h' }, reader)).statusCode).toBe(403);
    // With admin on sys/alerts/ it may.
    const admin = await operatorToken('all-alerts');
    const report = await ok(await replay({ since: '1h' }, admin));
    expect(report.rules.find((r: { rule: string }) => r.rule === 'dead-task-token').findings).toBe(1);
  });

  it('stores, announces and acts on nothing: the findings and the engine counts are unchanged by a replay', async () => {
    const listed = await ok(await s.call({ method: 'GET', url: '/v1/alerts' }));
    const counts = (await ok(await s.call({ method: 'GET', url: '/v1/alerts/rules' }))).rules.map(
      (r: { rule: string; findings: number }) => [r.rule, r.findings],
    );
    let report: { findings_total: number } = { findings_total: 0 };
    const written = await writes.during(async () => {
      report = await ok(await replay({ since: '1h' }));
      await s.node.services().anomaly!.idle();
    });
    expect(report.findings_total).toBeGreaterThan(0);
    // Not one entry written (the audit record of the request is the audit store's, and is the point).
    expect(written).toEqual([]);
    expect(await ok(await s.call({ method: 'GET', url: '/v1/alerts' }))).toEqual(listed);
    expect(
      (await ok(await s.call({ method: 'GET', url: '/v1/alerts/rules' }))).rules.map(
        (r: { rule: string; findings: number }) => [r.rule, r.findings],
      ),
    ).toEqual(counts);
  });

  it('refuses a huge range, an unbounded list or budget, and a bad since/until, with a clear code', async () => {
    for (const payload of [
      { since: '365d' },
      { since: '100000d' },
      { since: 'yesterday' },
      { since: '7x' },
      { since: '' },
      { since: '2999-01-01T00:00:00Z' },
      { since: '1h', until: '2h' },
      { since: '1h', until: 'later' },
      { since: '1h', limit: 100_000 },
      { since: '1h', limit: -1 },
      { since: '1h', warm_events: 10_000_000 },
      { since: '1h', time_budget: '1h' },
      { since: '1h', time_budget: 'soon' },
      { since: '1h', rules: ['no-such-rule'] },
      { since: '1h', rules: Array.from({ length: 40 }, (_, i) => `r${i}`) },
      { since: '1h', path: 'kv/' },
      {},
    ]) {
      const response = await replay(payload);
      expect(response.statusCode, JSON.stringify(payload)).toBe(400);
      expect(response.json().error.code, JSON.stringify(payload)).toBe('CUSTOS_ERR_VALIDATION');
    }
  });

  it('runs one replay at a time per node: a second while one runs is refused with CUSTOS_ERR_REPLAY_BUSY', async () => {
    const waiting = gate.hold();
    const first = replay({ since: '1h' });
    await waiting;
    const busy = await replay({ since: '1h' });
    expect(busy.statusCode).toBe(409);
    expect(busy.json().error.code).toBe('CUSTOS_ERR_REPLAY_BUSY');
    gate.release();
    expect((await first).statusCode).toBe(200);
    // Free again once it has finished.
    expect((await replay({ since: '1h' })).statusCode).toBe(200);
  });
});
