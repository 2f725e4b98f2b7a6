import { describe, expect, it } from 'vitest';
import { anomalyRig, deadTokenRequest, taskRequest } from '../test-support/anomaly-rig.js';
import { AnomalyEngine } from './anomaly-engine.js';
import { warmAnomalyEngine } from './anomaly-warm.js';
import { FindingStore } from './finding-store.js';
import { BootstrapReuseRule } from './rules/bootstrap-reuse-rule.js';
import { DeadTaskTokenRule } from './rules/dead-task-token-rule.js';
import { DeniedSpikeRule } from './rules/denied-spike-rule.js';
import { FirstAccessRule } from './rules/first-access-rule.js';

// Each rule against a real audit log on SQLite, fed events as the server records them.

const agent = { id: 'tsk_a1', identity: 'spiffe://custos.local/agent/gpu-infer', role: 'gpu-infer' };
const MIN = 60_000;
const HOUR = 3_600_000;

describe('dead-task-token', () => {
  it('raises high for each of revoked, ended and expired, once per task within the cooldown', async () => {
    const rig = await anomalyRig([new DeadTaskTokenRule()]);
    const reasons = ['task_revoked', 'task_ended', 'task_expired', 'expired'] as const;
    for (const [i, reason] of reasons.entries()) {
      await rig.record(deadTokenRequest({ ...agent, id: `tsk_d${i}` }, reason));
    }
    // The same revoked task again and again: one finding for the cooldown.
    for (let i = 0; i < 5; i++) await rig.record(deadTokenRequest({ ...agent, id: 'tsk_d0' }, 'task_revoked'));
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts.map((a) => a.subject.task_id).sort()).toEqual(['tsk_d0', 'tsk_d1', 'tsk_d2', 'tsk_d3']);
    expect(new Set(alerts.map((a) => a.severity))).toEqual(new Set(['high']));
    // After the cooldown it fires again.
    rig.clock.ms += 2 * HOUR;
    await rig.record(deadTokenRequest({ ...agent, id: 'tsk_d0' }, 'task_revoked'));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toHaveLength(5);
    await rig.close();
  });

  it('ignores refusals that name no verified task (a forged or garbled token) and other denials', async () => {
    const rig = await anomalyRig([new DeadTaskTokenRule()]);
    await rig.record({
      type: 'request',
      request_id: 'req-forged',
      auth: {},
      request: { method: 'GET', route: '/v1/secrets/*', source_ip: '198.51.100.7' },
      decision: 'deny',
      status: 401,
      error_code: 'CUSTOS_ERR_UNAUTHENTICATED',
      reason: 'bad_signature',
      details: { phase: 'response' },
    });
    await rig.record(taskRequest(agent, { path: 'kv/x', decision: 'deny' }));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });

  it('ignores a dead task ending or revoking itself (its agent’s cleanup after a revoked tree), not its other calls', async () => {
    const rig = await anomalyRig([new DeadTaskTokenRule()]);
    const task = { id: 'tsk_cleanup00000000000000', identity: 'bootstrap:bac_x', role: 'coordinator' };
    for (const route of ['/v1/tasks/:id/end', '/v1/tasks/:id/revoke']) {
      const cleanup = deadTokenRequest(task, 'task_revoked');
      await rig.record({ ...cleanup, request: { ...cleanup.request!, method: 'POST', route } });
    }
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.record(deadTokenRequest(task, 'task_revoked'));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts.map((a) => a.rule)).toEqual(['dead-task-token']);
    await rig.close();
  });
});

describe('bootstrap-token-reuse', () => {
  it('turns every recorded reuse alert into a critical finding', async () => {
    const rig = await anomalyRig([new BootstrapReuseRule()]);
    for (let i = 0; i < 2; i++) {
      await rig.record({
        type: 'security_alert',
        kind: 'bootstrap_token_reused',
        request_id: `req-reuse-${i}`,
        request: { method: 'POST', route: '/v1/auth/bootstrap/login', source_ip: '203.0.113.9' },
        details: { bootstrap_accessor: 'bac_fakeaccessor0000000' },
      });
    }
    await rig.record({ type: 'system', kind: 'keyring_rotated' });
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(2);
    expect(alerts[0]).toMatchObject({
      rule: 'bootstrap-token-reuse',
      severity: 'critical',
      subject: { token_accessor: 'bac_fakeaccessor0000000', source_ip: '203.0.113.9' },
    });
    await rig.close();
  });
});

describe('denied-spike', () => {
  const rule = () => new DeniedSpikeRule({ minHistoryMs: 30 * MIN, minDenied: 10, factor: 5 });

  it('fires once when an identity with a quiet history is suddenly refused many times', async () => {
    const rig = await anomalyRig([rule()]);
    // Two hours of normal work: a read a minute, a denial every 20 minutes.
    for (let m = 0; m < 120; m++) {
      await rig.record(taskRequest(agent, { path: 'kv/models/key', decision: m % 20 === 0 ? 'deny' : 'allow' }), MIN);
    }
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    // Then 30 denials in 30 seconds.
    for (let i = 0; i < 30; i++)
      await rig.record(taskRequest(agent, { path: `kv/finance/k${i}`, decision: 'deny' }), 1_000);
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ rule: 'denied-spike', subject: { identity: agent.identity, role: agent.role } });
    expect(alerts[0]!.evidence.length).toBeGreaterThan(1);
    expect(alerts[0]!.explanation).toMatch(/denied in the last 60 s/);
    await rig.close();
  });

  it('does not fire for an identity whose usual rate is as high, nor before the minimum history', async () => {
    const rig = await anomalyRig([rule()]);
    const noisy = { ...agent, identity: 'spiffe://custos.local/agent/noisy', id: 'tsk_n' };
    // Noisy from the start: 20 denials a minute for two hours.
    for (let m = 0; m < 120; m++) {
      for (let i = 0; i < 20; i++) await rig.record(taskRequest(noisy, { path: 'kv/x', decision: 'deny' }), 3_000);
    }
    // A fresh identity with no history at all, refused 30 times at once.
    const fresh = { ...agent, identity: 'spiffe://custos.local/agent/fresh', id: 'tsk_f' };
    for (let i = 0; i < 30; i++) await rig.record(taskRequest(fresh, { path: 'kv/y', decision: 'deny' }), 500);
    await rig.engine.idle();
    const alerts = (await rig.store.list()).alerts;
    // The noisy identity's first minutes (before its minimum history) and its steady rate afterwards: nothing.
    expect(alerts).toEqual([]);
    await rig.close();
  });
});

describe('denied-spike with a clock stepped back', () => {
  it('does not count denials stamped before its window (a clock stepped back, history fed twice)', async () => {
    const rig = await anomalyRig([new DeniedSpikeRule({ minHistoryMs: 30 * MIN, minDenied: 10, factor: 5 })]);
    for (let m = 0; m < 120; m++) await rig.record(taskRequest(agent, { path: 'kv/models/key' }), MIN);
    rig.clock.ms -= HOUR;
    for (let i = 0; i < 30; i++) await rig.record(taskRequest(agent, { path: `kv/x/${i}`, decision: 'deny' }), 1_000);
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });
});

describe('first-access', () => {
  const rule = (roles = {}) => new FirstAccessRule({ warmupMs: 24 * HOUR, warmupEvents: 20, roles });

  it('learns during warm-up, then fires once for a path the role and identity never used', async () => {
    const rig = await anomalyRig([rule()]);
    // A day and a half of the usual: two secrets, every half hour.
    for (let i = 0; i < 72; i++)
      await rig.record(taskRequest(agent, { path: i % 2 ? 'kv/models/store' : 'kv/models/hf' }), 30 * MIN);
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    // Sunday 03:00, the model-store node reads the finance key.
    await rig.record(taskRequest(agent, { path: 'kv/finance/ledger-admin' }));
    await rig.record(taskRequest(agent, { path: 'kv/finance/ledger-admin' }));
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ rule: 'first-access', severity: 'medium', subject: { role: agent.role } });
    expect(alerts[0]!.explanation).toContain('kv/finance/ledger-admin');
    expect(alerts[0]!.explanation).toMatch(/Role gpu-infer and identity .* have never used/);
    await rig.close();
  });

  it('does not alarm on a fresh node, for refused reads, nor for a role turned off', async () => {
    const rig = await anomalyRig([rule({ migrator: { disabled: true } })]);
    // Fresh: everything is new, nothing fires during warm-up.
    for (let i = 0; i < 30; i++) await rig.record(taskRequest(agent, { path: `kv/p/${i}` }), MIN);
    // A role turned off in the configuration, well past its warm-up.
    const migrator = { id: 'tsk_m', identity: 'spiffe://custos.local/job/migrate', role: 'migrator' };
    for (let i = 0; i < 40; i++) await rig.record(taskRequest(migrator, { path: `kv/m/${i}` }), HOUR);
    // A denied read of a new path is not an access (denied-spike watches those).
    await rig.record(taskRequest(agent, { path: 'kv/finance/other', decision: 'deny' }));
    // custos's own objects (a task reading its new child task) are named by new ids every time.
    const warmed = { ...migrator, role: 'other', identity: 'spiffe://custos.local/job/other' };
    for (let i = 0; i < 30; i++) await rig.record(taskRequest(warmed, { path: 'kv/o/known' }), HOUR);
    await rig.record(taskRequest(warmed, { path: 'sys/tasks/tsk_new' }));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });

  it('stays within its memory bounds: oldest subjects evicted, a full baseline neither learns nor fires', async () => {
    const small = new FirstAccessRule({
      warmupMs: 0,
      warmupEvents: 3,
      maxSubjects: 2,
      maxPathsPerSubject: 3,
      perRole: false,
    });
    const rig = await anomalyRig([small]);
    const who = (n: number) => ({ id: `tsk_${n}`, identity: `spiffe://custos.local/agent/${n}`, role: 'r' });
    // Identity 1 learns three paths (its bound) during warm-up, then reads ten new ones: none can be learned, none fires.
    for (let i = 0; i < 3; i++) await rig.record(taskRequest(who(1), { path: `kv/p/${i}` }));
    for (let i = 3; i < 13; i++) await rig.record(taskRequest(who(1), { path: `kv/p/${i}` }));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    // Two more identities evict identity 1: it warms up again instead of being judged on a baseline it lost.
    await rig.record(taskRequest(who(2), { path: 'kv/q' }));
    await rig.record(taskRequest(who(3), { path: 'kv/q' }));
    await rig.record(taskRequest(who(1), { path: 'kv/new' }));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });

  it('keeps its baseline across a restart when warmed from the stored history', async () => {
    const rig = await anomalyRig([rule()]);
    for (let i = 0; i < 60; i++)
      await rig.record(taskRequest(agent, { path: i % 2 ? 'kv/models/store' : 'kv/models/hf' }), HOUR);
    await rig.engine.idle();
    // A new engine (a restart) warmed from the same audit store: known paths stay known.
    const restarted = new AnomalyEngine({
      rules: [rule()],
      store: new FindingStore({ entries: rig.storage.entries, cipher: rig.barrier }),
    });
    expect(await warmAnomalyEngine(restarted, rig.storage.audit, 10_000)).toBe(60);
    rig.log.observe(restarted.offer);
    await rig.record(taskRequest(agent, { path: 'kv/models/store' }));
    await rig.record(taskRequest(agent, { path: 'kv/finance/new' }));
    await restarted.idle();
    await rig.engine.idle();
    const stats = restarted.stats().rules[0]!;
    expect(stats.findings).toBe(1);
    const { alerts } = await rig.store.list({ rule: 'first-access' });
    // Both engines saw the new path (the old one is still attached); it is stored once.
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.explanation).toContain('kv/finance/new');
    await restarted.close();
    await rig.close();
  });
});
