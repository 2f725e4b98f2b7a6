import { describe, expect, it } from 'vitest';
import { anomalyRig, deadTokenRequest, taskRequest } from '../test-support/anomaly-rig.js';
import { overridesFor } from './rule-support.js';
import { DeadTaskTokenRule } from './rules/dead-task-token-rule.js';
import { DeniedSpikeRule } from './rules/denied-spike-rule.js';
import { FirstAccessRule } from './rules/first-access-rule.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
// Two workloads of one role: the identity is the task's `sub`, as custos writes it.
const ci = { id: 'tsk_ci', identity: 'jwt:https://ci.example#repo:app', role: 'builder' };
const nightly = { id: 'tsk_nightly', identity: 'jwt:https://ci.example#repo:nightly', role: 'builder' };

describe('per-role and per-identity settings', () => {
  it('an identity’s own entry wins whole over its role’s; only own properties count', () => {
    const config = {
      roles: { builder: { disabled: false, factor: 3 } },
      identities: { [nightly.identity]: { disabled: true } },
    };
    expect(overridesFor(config, 'builder', ci.identity)).toEqual({ disabled: false, factor: 3 });
    expect(overridesFor(config, 'builder', nightly.identity)).toEqual({ disabled: true });
    expect(overridesFor(config, undefined, undefined)).toBeUndefined();
    expect(overridesFor(config, 'constructor', 'toString')).toBeUndefined();
  });

  it('first-access: one identity turned off, its role still watched', async () => {
    const rig = await anomalyRig([
      new FirstAccessRule({ warmupMs: HOUR, warmupEvents: 10, identities: { [nightly.identity]: { disabled: true } } }),
    ]);
    for (let i = 0; i < 30; i++) {
      await rig.record(taskRequest(ci, { path: 'kv/build/token' }), 5 * MIN);
      await rig.record(taskRequest(nightly, { path: 'kv/build/token' }), 5 * MIN);
    }
    await rig.record(taskRequest(nightly, { path: 'kv/prod/db' }));
    await rig.record(taskRequest(ci, { path: 'kv/prod/db-admin' }));
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts.map((a) => a.subject.identity)).toEqual([ci.identity]);
    await rig.close();
  });

  it('dead-task-token: a role’s severity, and an identity turned off', async () => {
    const rig = await anomalyRig([
      new DeadTaskTokenRule({
        roles: { builder: { severity: 'critical' } },
        identities: { [nightly.identity]: { disabled: true } },
      }),
    ]);
    await rig.record(deadTokenRequest(ci, 'task_revoked'));
    await rig.record(deadTokenRequest(nightly, 'task_revoked'));
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts.map((a) => [a.subject.identity, a.severity])).toEqual([[ci.identity, 'critical']]);
    await rig.close();
  });

  it('denied-spike: a role with a lower floor fires where the default would not', async () => {
    const spike = async (roles: Record<string, { minDenied: number }>) => {
      const rig = await anomalyRig([new DeniedSpikeRule({ minHistoryMs: 30 * MIN, minDenied: 20, factor: 5, roles })]);
      for (let m = 0; m < 120; m++) await rig.record(taskRequest(ci, { path: 'kv/build/token' }), MIN);
      for (let i = 0; i < 12; i++) await rig.record(taskRequest(ci, { path: `kv/x/${i}`, decision: 'deny' }), 1_000);
      await rig.engine.idle();
      const rules = (await rig.store.list()).alerts.map((a) => a.rule);
      await rig.close();
      return rules;
    };
    expect(await spike({})).toEqual([]);
    expect(await spike({ builder: { minDenied: 10 } })).toEqual(['denied-spike']);
  });
});
