import { describe, expect, it } from 'vitest';
import type { AuditEventInput } from '../../audit/audit-event.js';
import { anomalyRig } from '../../test-support/anomaly-rig.js';
import { DelegationShapeRule } from './delegation-shape-rule.js';

// delegation-shape against a real audit log on SQLite, fed delegations as the audit plugin records them.

const HOUR = 3_600_000;
let n = 0;

/** The outcome record of `POST /v1/tasks/delegate` by the task at the end of `chain`, issuing `child`. */
function delegation(role: string, chain: readonly string[], child: string, status = 200): AuditEventInput {
  const parent = chain[chain.length - 1]!;
  return {
    type: 'request',
    request_id: `req-d${++n}`,
    auth: {
      task_id: parent,
      identity: `spiffe://custos.local/${role}`,
      role,
      display_name: `task:${parent}`,
      policies: [role],
      task_chain: [...chain],
    },
    request: { method: 'POST', route: '/v1/tasks/delegate', source_ip: '10.0.0.5' },
    decision: status < 400 ? 'allow' : 'deny',
    status,
    details: { phase: 'response', ...(status < 400 ? { issued_task: child } : {}) },
  };
}

/** One usual tree: a root that fans out to `width` workers, the first of which delegates once more. */
async function usualTree(rig: Awaited<ReturnType<typeof anomalyRig>>, role: string, i: number, width = 4) {
  const root = `tsk_${role}_${i}`;
  for (let c = 0; c < width; c++) await rig.record(delegation(role, [root], `${root}_${c}`), 60_000);
  await rig.record(delegation(role, [root, `${root}_0`], `${root}_0_0`), HOUR);
}

const rule = (roles = {}) => new DelegationShapeRule({ minDelegations: 50, minHistoryMs: 24 * HOUR, roles });

describe('delegation-shape', () => {
  it("fires when a task delegates deeper than its role's trees ever went", async () => {
    const rig = await anomalyRig([rule()]);
    for (let i = 0; i < 30; i++) await usualTree(rig, 'coord', i);
    const chain = ['tsk_x', 'tsk_x_1', 'tsk_x_2'];
    await rig.record(delegation('coord', chain, 'tsk_x_3'));
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ rule: 'delegation-shape', subject: { role: 'coord', task_id: 'tsk_x_2' } });
    expect(alerts[0]!.explanation).toMatch(
      /^A task of role coord delegated a child at depth 3 \(its deepest before: 2\)/,
    );
    await rig.close();
  });

  it('fires once per parent when one task fans out far wider than the role ever did', async () => {
    const rig = await anomalyRig([rule()]);
    for (let i = 0; i < 30; i++) await usualTree(rig, 'coord', i);
    for (let c = 0; c < 40; c++) await rig.record(delegation('coord', ['tsk_wide'], `tsk_wide_${c}`), 1_000);
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.subject).toMatchObject({ task_id: 'tsk_wide' });
    // The 9th child: more than 2 × the widest (4) and at least 8.
    expect(alerts[0]!.explanation).toContain('a 9th child of one task (its widest fan-out before: 4)');
    await rig.close();
  });

  it('stays silent on usual trees, refusals, logins, before the minimum history and for a role turned off', async () => {
    const rig = await anomalyRig([rule({ swarm: { disabled: true } })]);
    for (let i = 0; i < 30; i++) await usualTree(rig, 'coord', i);
    // Young role: deep and wide, but no history yet.
    for (let c = 0; c < 20; c++) await rig.record(delegation('young', ['tsk_y', 'tsk_y1', 'tsk_y2'], `tsk_y_${c}`));
    // Refused delegations issue nothing.
    for (let c = 0; c < 20; c++) await rig.record(delegation('coord', ['tsk_r', 'tsk_r1', 'tsk_r2'], 'x', 403));
    // A login's outcome names the issued task, with the new task itself as the caller: not a delegation.
    // (Counted as one, a day of logins would be a history of depth 1 and this role's first tree would fire.)
    for (let i = 0; i < 60; i++) {
      await rig.record(
        {
          type: 'request',
          request_id: `req-login-${i}`,
          auth: { task_id: `tsk_l${i}`, identity: 'bootstrap:bac_x', role: 'solo', task_chain: [`tsk_l${i}`] },
          request: { method: 'POST', route: '/v1/auth/bootstrap/login', source_ip: '10.0.0.5' },
          decision: 'allow',
          status: 200,
          details: { phase: 'response', issued_task: `tsk_l${i}` },
        },
        HOUR / 2,
      );
    }
    await rig.record(delegation('solo', ['tsk_l59'], 'tsk_l59_a'));
    await rig.record(delegation('solo', ['tsk_l59', 'tsk_l59_a'], 'tsk_l59_b'));
    // Nor is an operator's start.
    await rig.record({
      type: 'request',
      request_id: 'req-start',
      auth: { token_accessor: 'acc_op', root: true },
      request: { method: 'POST', route: '/v1/roles/:name/tasks', source_ip: '10.0.0.5' },
      decision: 'allow',
      status: 200,
      details: { phase: 'response', issued_task: 'tsk_started' },
    });
    // A role whose trees have no fixed shape, turned off.
    for (let i = 0; i < 30; i++) await usualTree(rig, 'swarm', i);
    for (let c = 0; c < 40; c++) await rig.record(delegation('swarm', ['tsk_s', 'tsk_s1', 'tsk_s2'], `tsk_s_${c}`));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });
});
