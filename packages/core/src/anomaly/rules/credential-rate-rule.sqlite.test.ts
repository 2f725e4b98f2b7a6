import { describe, expect, it } from 'vitest';
import type { AuditEventInput } from '../../audit/audit-event.js';
import { anomalyRig, taskRequest } from '../../test-support/anomaly-rig.js';
import { CredentialRateRule } from './credential-rate-rule.js';

// credential-rate against a real audit log on SQLite, fed events as the server records them.

const MIN = 60_000;
const HOUR = 3_600_000;
const worker = (n: number, role = 'etl') => ({ id: `tsk_w${n}`, identity: `spiffe://custos.local/${role}/${n}`, role });

/** `POST /v1/creds/pg-main/reader` by a task: its before-record and its outcome, as the audit plugin writes them. */
function issue(task: ReturnType<typeof worker>, outcome: 'allow' | 'deny' = 'allow'): AuditEventInput[] {
  const base = taskRequest(task, {
    path: 'pg-main/reader',
    action: 'issue',
    method: 'POST',
    route: '/v1/creds/:engine/:role',
    decision: outcome,
  });
  return [{ ...base, status: 0, decision: 'allow', details: { phase: 'request' } }, base];
}

const rule = (roles = {}) => new CredentialRateRule({ minIssued: 10, minHistoryMs: 24 * HOUR, roles });

describe('credential-rate', () => {
  it("fires once when a role's tasks are issued credentials far more often than the role's history", async () => {
    const rig = await anomalyRig([rule()]);
    // Two days of the usual: a worker starts every 30 minutes and asks for one login.
    for (let i = 0; i < 96; i++) for (const e of issue(worker(i))) await rig.record(e, i % 2 ? 30 * MIN : 0);
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    // Then one task asks for 30 logins in 15 minutes.
    for (let i = 0; i < 30; i++) for (const e of issue(worker(999))) await rig.record(e, 15_000);
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      rule: 'credential-rate',
      severity: 'medium',
      subject: { role: 'etl', task_id: 'tsk_w999' },
    });
    expect(alerts[0]!.evidence).toHaveLength(10);
    expect(alerts[0]!.explanation).toMatch(
      /^Role etl was issued \d+ dynamic credentials in the last 60 min \(latest: pg-main\/reader\)/,
    );
    await rig.close();
  });

  it('stays silent on a nightly fan-out, on refusals and reads, before the minimum history, and for a role turned off', async () => {
    const rig = await anomalyRig([rule({ fanout: { disabled: true } })]);
    // Four nights: at 02:00, 25 workers each take a login within 10 minutes; by day, one every two hours.
    for (let d = 0; d < 4; d++) {
      for (let i = 0; i < 25; i++) for (const e of issue(worker(i, 'nightly'))) await rig.record(e, 24_000);
      for (let h = 0; h < 12; h++)
        for (const e of issue(worker(100 + h, 'nightly'))) await rig.record(e, 2 * HOUR - 833);
    }
    // A young role asking for many at once: no history yet.
    for (let i = 0; i < 30; i++) for (const e of issue(worker(i, 'young'))) await rig.record(e, 1_000);
    // Refused issues and credential reads are not issues.
    const etl = worker(1);
    for (let i = 0; i < 30; i++) for (const e of issue(etl, 'deny')) await rig.record(e, 1_000);
    for (let i = 0; i < 30; i++) await rig.record(taskRequest(etl, { path: 'pg-main/reader' }), 1_000);
    // A role that fans out by design, turned off.
    for (let d = 0; d < 2; d++) for (const e of issue(worker(d, 'fanout'))) await rig.record(e, 24 * HOUR);
    for (let i = 0; i < 50; i++) for (const e of issue(worker(i, 'fanout'))) await rig.record(e, 1_000);
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });
});
