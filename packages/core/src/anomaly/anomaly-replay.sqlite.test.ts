import { describe, expect, it } from 'vitest';
import { anomalyRig, deadTokenRequest, taskRequest } from '../test-support/anomaly-rig.js';
import { AnomalyReplayer } from './anomaly-replay.js';

// Replay over a real audit log on SQLite: the node's rules, fresh, over
// stored history, reporting and never storing.

const HOUR = 3_600_000;
const task = { id: 'tsk_r1', identity: 'spiffe://custos.local/reader/1', role: 'reader' };

/** Two days of a reader reading its two usual secrets every 10 minutes, then one new path and a dead token. */
async function history() {
  const rig = await anomalyRig([]);
  for (let i = 0; i < 288; i++) {
    await rig.record(taskRequest(task, { path: i % 2 ? 'kv/app/db' : 'kv/app/api' }), 600_000);
  }
  const incidentsFrom = rig.clock.ms;
  await rig.record(taskRequest(task, { path: 'kv/finance/ledger' }), 60_000);
  await rig.record(deadTokenRequest({ id: 'tsk_gone', identity: 'x', role: 'reader' }, 'task_revoked'), 60_000);
  return { rig, incidentsFrom };
}

describe('AnomalyReplayer', () => {
  it("reports what the node's rules would have raised since a time, from a warmed start, storing nothing", async () => {
    const { rig, incidentsFrom } = await history();
    const replayer = new AnomalyReplayer({ store: rig.storage.audit, now: () => rig.clock.ms });
    const report = await replayer.replay({ since: new Date(incidentsFrom - HOUR).toISOString() });
    expect(report.complete).toBe(true);
    expect(report.warmed).toBeGreaterThan(200);
    expect(report.events).toBe(8);
    const counts = Object.fromEntries(report.rules.map((r) => [r.rule, r.findings]));
    expect(counts).toMatchObject({ 'first-access': 1, 'dead-task-token': 1, 'off-hours': 0 });
    expect(report.findings_total).toBe(2);
    expect(report.findings.map((f) => f.rule).sort()).toEqual(['dead-task-token', 'first-access']);
    expect(report.findings.find((f) => f.rule === 'first-access')!.explanation).toContain('kv/finance/ledger');
    // Nothing stored: the finding store (and so `custos alerts list`) is as it was.
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });

  it('judges from a cold start when told to warm from nothing: first-access is then still warming up', async () => {
    const { rig, incidentsFrom } = await history();
    const replayer = new AnomalyReplayer({ store: rig.storage.audit, now: () => rig.clock.ms });
    const cold = await replayer.replay({ since: new Date(incidentsFrom - HOUR).toISOString(), warmEvents: 0 });
    expect(cold.warmed).toBe(0);
    expect(cold.rules.find((r) => r.rule === 'first-access')!.findings).toBe(0);
    await rig.close();
  });

  it('keeps to the rules asked for, caps the list, and refuses unknown rules and bad ranges with clear messages', async () => {
    const { rig, incidentsFrom } = await history();
    const replayer = new AnomalyReplayer({ store: rig.storage.audit, now: () => rig.clock.ms });
    const since = new Date(incidentsFrom - HOUR).toISOString();
    // The engine off (`anomaly.enabled: false`) does not stop a replay: that is how rules are tried before they act.
    const off = new AnomalyReplayer({ store: rig.storage.audit, config: { enabled: false }, now: () => rig.clock.ms });
    expect((await off.replay({ since })).findings_total).toBe(2);
    // A rule turned off in the configuration is not replayed, and asking for it is refused.
    const without = new AnomalyReplayer({
      store: rig.storage.audit,
      config: { rules: { 'first-access': false } },
      now: () => rig.clock.ms,
    });
    expect((await without.replay({ since })).rules.map((r) => r.rule)).not.toContain('first-access');
    await expect(without.replay({ since, rules: ['first-access'] })).rejects.toMatchObject({
      code: 'CUSTOS_ERR_VALIDATION',
    });
    const one = await replayer.replay({ since, rules: ['dead-task-token'], limit: 0 });
    expect(one.rules.map((r) => r.rule)).toEqual(['dead-task-token']);
    expect(one.findings).toEqual([]);
    expect(one.findings_total).toBe(1);
    for (const [request, message] of [
      [{ since: 'yesterday' }, /since is a duration back from now/],
      [{ since: '7x' }, /since is a duration/],
      [{ since: '2026-13-45T00:00:00Z' }, /not a valid ISO-8601 time/],
      [{ since: '2999-01-01T00:00:00Z' }, /in the future/],
      [{ since: '1h', until: '2h' }, /until must be later than since/],
      [{ since: '365d' }, /at most 90 days/],
      [{ since: '1h', rules: ['no-such-rule'] }, /Not a rule turned on on this node: no-such-rule/],
      [{ since: '1h', limit: 5_000 }, /limit is a whole number/],
      [{ since: '1h', timeBudgetMs: 3_600_000 }, /time_budget is from 1s/],
    ] as const) {
      await expect(replayer.replay(request), JSON.stringify(request)).rejects.toMatchObject({
        code: 'CUSTOS_ERR_VALIDATION',
        message: expect.stringMatching(message),
      });
    }
    await rig.close();
  });

  it('runs one replay at a time, and stops at its bounds saying where', async () => {
    const { rig } = await history();
    let now = rig.clock.ms;
    const replayer = new AnomalyReplayer({
      store: rig.storage.audit,
      // A clock that moves a minute each time it is read: the time budget is reached after a few pages.
      now: () => (now += 60_000),
      limits: { pageSize: 50, timeBudgetMs: 3 * 60_000 },
    });
    const first = replayer.replay({ since: '3d', warmEvents: 0 });
    await expect(replayer.replay({ since: '3d' })).rejects.toMatchObject({ code: 'CUSTOS_ERR_REPLAY_BUSY' });
    const report = await first;
    expect(report).toMatchObject({ complete: false, stopped: 'time_budget' });
    expect(report.events).toBeGreaterThan(0);
    expect(report.events).toBeLessThan(290);
    // Free again once it has finished.
    const bounded = new AnomalyReplayer({
      store: rig.storage.audit,
      now: () => rig.clock.ms,
      limits: { maxEvents: 100, pageSize: 30 },
    });
    const capped = await bounded.replay({ since: '3d', warmEvents: 0 });
    expect(capped).toMatchObject({ complete: false, stopped: 'max_events', events: 100 });
    expect(capped.to_seq - capped.from_seq + 1).toBe(100);
    await rig.close();
  });
});
