import { describe, expect, it } from 'vitest';
import { anomalyRig, taskRequest } from '../../test-support/anomaly-rig.js';
import { RequestBurstRule } from './request-burst-rule.js';

// request-burst against a real audit log on SQLite, fed events as the server records them.

const MIN = 60_000;
const agent = { id: 'tsk_a1', identity: 'spiffe://custos.local/agent/gpu-infer', role: 'gpu-infer' };
const rule = (roles = {}) =>
  new RequestBurstRule({ minRequests: 30, factor: 10, peakFactor: 3, minHistoryMs: 30 * MIN, roles });

describe('request-burst', () => {
  it('fires once when an identity with a quiet history suddenly runs an order of magnitude faster', async () => {
    const rig = await anomalyRig([rule()]);
    // Two hours of the usual: a read a minute.
    for (let m = 0; m < 120; m++) await rig.record(taskRequest(agent, { path: 'kv/models/store' }), MIN);
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    // Then five requests a second for 40 seconds: a loop dumping what it may read.
    for (let i = 0; i < 200; i++) await rig.record(taskRequest(agent, { path: `kv/models/k${i % 50}` }), 200);
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      rule: 'request-burst',
      severity: 'medium',
      subject: { identity: agent.identity, role: agent.role, task_id: agent.id },
    });
    expect(alerts[0]!.evidence).toHaveLength(10);
    expect(alerts[0]!.explanation).toMatch(/made 30 requests in the last 60 s, against a usual 1.00 per window/);
    await rig.close();
  });

  it('stays silent on an hourly job, a steady high rate, a fresh identity and a role turned off', async () => {
    const rig = await anomalyRig([rule({ batch: { disabled: true } })]);
    const cron = { id: 'tsk_c', identity: 'spiffe://custos.local/job/report', role: 'report' };
    // Eight hours: a read every 5 minutes, and at the top of each hour 40 reads in 20 seconds (above the
    // floor, far above the average: only its own usual peak says it is normal).
    for (let h = 0; h < 8; h++) {
      for (let i = 0; i < 40; i++) await rig.record(taskRequest(cron, { path: `kv/report/${i}` }), 500);
      for (let m = 0; m < 12; m++) await rig.record(taskRequest(cron, { path: 'kv/report/cfg' }), 5 * MIN - 1_667);
    }
    // Forty minutes at two requests a second, all along.
    const steady = { id: 'tsk_s', identity: 'spiffe://custos.local/agent/steady', role: 'steady' };
    for (let i = 0; i < 4_800; i++) await rig.record(taskRequest(steady, { path: 'kv/s' }), 500);
    // A fresh identity bursting in its first minutes: no baseline yet.
    const fresh = { id: 'tsk_f', identity: 'spiffe://custos.local/agent/fresh', role: 'fresh' };
    for (let i = 0; i < 100; i++) await rig.record(taskRequest(fresh, { path: 'kv/f' }), 100);
    // A role turned off, with a history and then a burst.
    const batch = { id: 'tsk_b', identity: 'spiffe://custos.local/job/batch', role: 'batch' };
    for (let m = 0; m < 60; m++) await rig.record(taskRequest(batch, { path: 'kv/b' }), MIN);
    for (let i = 0; i < 100; i++) await rig.record(taskRequest(batch, { path: 'kv/b' }), 100);
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });

  it('counts a write once (its outcome, not its before-record), a report once, and never judges root', async () => {
    const rig = await anomalyRig([rule()]);
    for (let m = 0; m < 60; m++) await rig.record(taskRequest(agent, { path: 'kv/a' }), MIN);
    // 20 writes in 10 s: 40 records, but 20 requests — under the floor of 30.
    for (let i = 0; i < 20; i++) {
      const write = taskRequest(agent, { path: 'kv/a', action: 'write', method: 'PUT' });
      await rig.record({ ...write, details: { phase: 'request' } }, 0);
      await rig.record(write, 500);
    }
    // A scanner's report of 50 stored secrets found: one request, recorded once per path.
    for (let i = 0; i < 50; i++) {
      const report = taskRequest(agent, { path: `kv/found/${i}`, method: 'POST', route: '/v1/scan/matches' });
      await rig.record({ ...report, details: { phase: 'path_report', reported_by: 'scan' } }, 0);
    }
    for (let i = 0; i < 100; i++) {
      await rig.record(
        {
          type: 'request',
          request_id: `req-root-${i}`,
          auth: { token_accessor: 'acc_root', root: true },
          request: { method: 'GET', route: '/v1/secrets/*', path: 'kv/a', action: 'read', source_ip: '127.0.0.1' },
          decision: 'allow',
          status: 200,
          details: { phase: 'response' },
        },
        100,
      );
    }
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });
});
