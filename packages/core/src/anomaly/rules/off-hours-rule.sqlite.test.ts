import { describe, expect, it } from 'vitest';
import { parseActiveHours } from '../../tasks/active-hours.js';
import { RoleService } from '../../tasks/role-service.js';
import { anomalyRig, taskRequest } from '../../test-support/anomaly-rig.js';
import { DeclaredHours } from '../declared-hours.js';
import { OffHoursRule } from './off-hours-rule.js';

// off-hours against a real audit log on SQLite, fed events as the server records them.

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Monday 2026-03-02 00:00 UTC. */
const MONDAY = Date.parse('2026-03-02T00:00:00.000Z');
const node = { id: 'tsk_g1', identity: 'spiffe://custos.local/agent/gpu-infer-1', role: 'gpu-infer' };

type Rig = Awaited<ReturnType<typeof anomalyRig>>;

/** Weeks of office work: Monday to Friday, a read every 30 minutes from 07:00 to 18:30 UTC (a few minutes late at times). */
async function officeWeeks(rig: Rig, task: typeof node, weeks: number, fromWeek = 0): Promise<void> {
  for (let w = fromWeek; w < fromWeek + weeks; w++) {
    for (let d = 0; d < 5; d++) {
      for (let i = 0; i < 24; i++) {
        rig.clock.ms = MONDAY + w * 7 * DAY + d * DAY + 7 * HOUR + i * 30 * MIN + ((i * 7 + d) % 11) * MIN;
        await rig.record(taskRequest(task, { path: 'kv/models/store' }));
      }
    }
  }
}

describe('off-hours', () => {
  it('fires once when a node with a weekday rhythm reads the model-store key at 03:00 on a Sunday', async () => {
    const rig = await anomalyRig([new OffHoursRule()]);
    await officeWeeks(rig, node, 3);
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    // Sunday of week 3, 03:00 UTC: four reads within 20 minutes.
    rig.clock.ms = MONDAY + 20 * DAY + 3 * HOUR;
    for (let i = 0; i < 4; i++) await rig.record(taskRequest(node, { path: 'kv/models/store' }), 5 * MIN);
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      rule: 'off-hours',
      severity: 'medium',
      subject: { role: 'gpu-infer', task_id: node.id },
    });
    expect(alerts[0]!.explanation).toMatch(/^Role gpu-infer and identity .* made a request on Sunday 03:00–04:00 UTC/);
    await rig.close();
  });

  it('stays silent on the usual rhythm, a few minutes early, before its minimum history, and for a role turned off', async () => {
    const rig = await anomalyRig([new OffHoursRule({ roles: { ops: { disabled: true } } })]);
    // Week one: a Sunday night job before the minimum history (14 days): learned, not judged.
    await officeWeeks(rig, node, 1);
    rig.clock.ms = MONDAY + 6 * DAY + 2 * HOUR;
    await rig.record(taskRequest(node, { path: 'kv/models/store' }));
    // Weeks two to four: the usual, each day starting a few minutes before 07:00 on Fridays (the hour before is a neighbour).
    await officeWeeks(rig, node, 3, 1);
    for (let w = 1; w < 4; w++) {
      rig.clock.ms = MONDAY + w * 7 * DAY + 4 * DAY + 6 * HOUR + 50 * MIN;
      await rig.record(taskRequest(node, { path: 'kv/models/store' }));
    }
    // An on-call role that works at any hour, turned off.
    const ops = { id: 'tsk_o', identity: 'spiffe://custos.local/ops/pager', role: 'ops' };
    await officeWeeks(rig, ops, 3);
    rig.clock.ms = MONDAY + 27 * DAY + 3 * HOUR;
    await rig.record(taskRequest(ops, { path: 'kv/ops/runbook' }));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });

  it('judges a role with declared hours against them from its first request, over its learned baseline', async () => {
    // The declaration is a role's, written through the real role service on the rig's database.
    const rig = await anomalyRig([]);
    const roles = new RoleService({ storage: rig.storage, cipher: rig.barrier });
    await roles.write('gpu-infer', {
      policies: [],
      active_hours: parseActiveHours('Mon-Fri 07:00-19:00 Europe/Berlin'),
    });
    const declared = new DeclaredHours(roles);
    const unfollow = await declared.start(roles);
    const rule = new OffHoursRule({}, declared.lookup);
    const checked = await anomalyRig([rule]);
    // Monday 2026-03-02 06:30 UTC is 07:30 in Berlin: inside, no history needed to judge.
    checked.clock.ms = MONDAY + 6 * HOUR + 30 * MIN;
    await checked.record(taskRequest(node, { path: 'kv/models/store' }));
    // Monday 05:30 UTC is 06:30 in Berlin: outside — the first request at that hour fires at once.
    checked.clock.ms = MONDAY + 5 * HOUR + 30 * MIN + DAY;
    await checked.record(taskRequest(node, { path: 'kv/models/store' }), 5 * MIN);
    await checked.record(taskRequest(node, { path: 'kv/models/store' }), 5 * MIN);
    // A role without a declaration keeps its learned baseline: no finding before its minimum history.
    const other = { ...node, id: 'tsk_o2', role: 'batch' };
    await checked.record(taskRequest(other, { path: 'kv/batch/x' }));
    await checked.engine.idle();
    let { alerts } = await checked.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ rule: 'off-hours', subject: { role: 'gpu-infer', task_id: node.id } });
    expect(alerts[0]!.explanation).toContain('outside its declared active hours (Mon-Fri 07:00-19:00 Europe/Berlin)');
    // A change made through the role service applies at once (no storage read by the rule): the declaration cleared,
    // the role is back on its learned baseline, which has too little history to judge.
    await roles.write('gpu-infer', { policies: [], active_hours: [] });
    // Sunday 03:00 UTC: outside the old declaration, and past its cooldown.
    checked.clock.ms = MONDAY + 6 * DAY + 3 * HOUR;
    await checked.record(taskRequest(node, { path: 'kv/models/store' }));
    await checked.engine.idle();
    ({ alerts } = await checked.store.list());
    expect(alerts).toHaveLength(1);
    unfollow();
    await checked.close();
    await rig.close();
  });
});
