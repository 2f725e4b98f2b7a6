import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyAudit } from '../audit/audit-verify.js';
import { anomalyRig, deadTokenRequest, taskRequest } from '../test-support/anomaly-rig.js';
import { AnomalyEngine } from './anomaly-engine.js';
import type { AnomalyRule } from './anomaly-rule.js';
import { resumeAnomalyEngine } from './anomaly-warm.js';
import { BootstrapReuseRule } from './rules/bootstrap-reuse-rule.js';
import { DeadTaskTokenRule } from './rules/dead-task-token-rule.js';

// Integration: the engine observing a real audit log on SQLite, findings in real (sealed) storage.
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-anomaly-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const task = { id: 'tsk_dead01', identity: 'spiffe://custos.local/agent/enricher', role: 'enricher' };

/** A rule that throws on every event: the engine must isolate it. */
class BrokenRule implements AnomalyRule {
  readonly name = 'broken';
  readonly description = 'throws';
  readonly config = {};
  observe(): undefined {
    throw new Error('rule bug');
  }
}

describe('AnomalyEngine on a real audit log', () => {
  it('raises a finding whose evidence is the audit record, proven by audit verify', async () => {
    const rig = await anomalyRig([new DeadTaskTokenRule()]);
    await rig.record(taskRequest(task, { path: 'kv/app/db' }));
    const record = await rig.record(deadTokenRequest(task, 'task_revoked'));
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    const finding = alerts[0]!;
    expect(finding).toMatchObject({
      rule: 'dead-task-token',
      severity: 'high',
      state: 'open',
      subject: { task_id: task.id, identity: task.identity, role: task.role },
      evidence: [{ seq: record.seq, hash: record.hash }],
      time: record.ts,
    });
    expect(finding.explanation).toContain('revoked');
    // The evidence is the chain's own record, and the chain verifies.
    await rig.log.checkpoint();
    expect(await verifyAudit(rig.storage.audit, { publicKeys: rig.publicKeys })).toMatchObject({ ok: true });
    const [stored] = await rig.storage.audit.range(record.seq, 1);
    expect(stored!.hash).toBe(finding.evidence[0]!.hash);
    expect(await rig.store.get(finding.id)).toEqual(finding);
    await rig.close();
  });

  it('isolates a throwing rule: counted and reported, the other rules go on', async () => {
    const reported: string[] = [];
    const rig = await anomalyRig([new BrokenRule(), new DeadTaskTokenRule()], {
      engine: { onRuleError: (rule) => reported.push(rule) },
    });
    await rig.record(deadTokenRequest(task, 'task_ended'));
    await rig.record(taskRequest(task, { path: 'kv/app/db' }));
    await rig.engine.idle();
    const stats = rig.engine.stats();
    expect(stats.rules.find((r) => r.rule === 'broken')).toMatchObject({ events: 2, errors: 2, findings: 0 });
    expect(stats.rules.find((r) => r.rule === 'dead-task-token')).toMatchObject({ events: 2, errors: 0, findings: 1 });
    expect(reported).toEqual(['broken', 'broken']);
    expect((await rig.store.list()).alerts.map((a) => a.rule)).toEqual(['dead-task-token']);
    await rig.close();
  });

  it('never fails or delays a record: a throwing observer is ignored, and rules run after acknowledgement', async () => {
    const rig = await anomalyRig([new DeadTaskTokenRule()]);
    rig.log.observe(() => {
      throw new Error('observer bug');
    });
    const record = await rig.record(deadTokenRequest(task, 'task_revoked'));
    expect(record.seq).toBe(1);
    // Acknowledged, and the rules have not run yet: they run on a later turn.
    expect(rig.engine.stats().rules[0]!.events).toBe(0);
    expect(rig.engine.stats().busy_ms).toBe(0);
    await rig.engine.idle();
    expect(rig.engine.stats().rules[0]!.events).toBe(1);
    // The turn that ran the rule is counted as the engine's time on the event loop.
    expect(rig.engine.stats().busy_ms).toBeGreaterThan(0);
    await rig.close();
  });

  it('drops and counts events beyond its queue instead of growing', async () => {
    const reports: number[] = [];
    const rig = await anomalyRig([new DeadTaskTokenRule()], {
      engine: { maxQueue: 3, onDropping: (dropped) => reports.push(dropped) },
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => rig.log.record(taskRequest(task, { path: `kv/a/${i}` }))));
    await rig.engine.idle();
    const stats = rig.engine.stats();
    expect(stats.dropped).toBeGreaterThan(0);
    expect(stats.dropped + stats.rules[0]!.events).toBe(10);
    // Reported once for the run of drops, with the count so far.
    expect(reports).toHaveLength(1);
    expect(reports[0]).toBeGreaterThan(0);
    // The progress stays before the first dropped record, so the next start examines them.
    expect(rig.engine.progress()).toBe(0);
    await rig.close();
  });

  it('raises at most its budget of findings per rule per minute, and reports the rest as suppressed', async () => {
    const suppressed: string[] = [];
    const rig = await anomalyRig([new DeadTaskTokenRule({ cooldownMs: 0 })], {
      engine: { maxFindingsPerMinute: 5, onSuppressing: (rule) => suppressed.push(rule) },
    });
    for (let i = 0; i < 20; i++)
      await rig.record(deadTokenRequest({ ...task, id: `tsk_flood${i}` }, 'task_revoked'), 100);
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toHaveLength(5);
    expect(rig.engine.stats().rules[0]).toMatchObject({ findings: 5, suppressed: 15 });
    expect(suppressed).toEqual(['dead-task-token']);
    // The budget refills with (event) time.
    rig.clock.ms += 60_000;
    await rig.record(deadTokenRequest({ ...task, id: 'tsk_later' }, 'task_revoked'));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toHaveLength(6);
    await rig.close();
  });

  it('loses no raised finding across a restart, and stores a finding raised twice once', async () => {
    const url = `sqlite:${join(dir, 'custos.db')}`;
    const first = await anomalyRig([new DeadTaskTokenRule(), new BootstrapReuseRule()], { url });
    await first.record(deadTokenRequest(task, 'task_expired'));
    await first.record({
      type: 'security_alert',
      kind: 'bootstrap_token_reused',
      request_id: 'req-reuse',
      request: { method: 'POST', route: '/v1/auth/bootstrap/login', source_ip: '203.0.113.9' },
      details: { bootstrap_accessor: 'bac_fake0000000000000000' },
    });
    await first.engine.idle();
    const before = (await first.store.list()).alerts;
    expect(before.map((a) => a.rule).sort()).toEqual(['bootstrap-token-reuse', 'dead-task-token']);
    await first.close();

    const second = await anomalyRig([new DeadTaskTokenRule()], { url, keys: first.keys });
    const after = (await second.store.list()).alerts;
    expect(after).toEqual(before);
    expect(await second.store.raise(before[0]!)).toBe(false);
    await second.close();
  });

  it('after a crash, runs the rules over the records past its stored progress, and only those', async () => {
    // A node that crashed: its log acknowledged the records, its rules never saw the last ones.
    const rig = await anomalyRig([]);
    await rig.record(deadTokenRequest({ ...task, id: 'tsk_seen' }, 'task_revoked'));
    await rig.record(taskRequest(task, { path: 'kv/app/db' }));
    const progress = (await rig.record(taskRequest(task, { path: 'kv/app/db' }))).seq;
    await rig.store.writeCursor(progress);
    const unseen = await rig.record(deadTokenRequest({ ...task, id: 'tsk_unseen' }, 'task_revoked'));
    expect(await rig.store.readCursor()).toBe(progress);

    // The next start: learn up to the progress, raise after it.
    const engine = new AnomalyEngine({ rules: [new DeadTaskTokenRule()], store: rig.store });
    expect(await resumeAnomalyEngine(engine, rig.storage.audit, { warmEvents: 100, cursor: progress })).toEqual({
      warmed: 3,
      resumed: 1,
    });
    await engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts.map((a) => a.subject.task_id)).toEqual(['tsk_unseen']);
    expect(alerts[0]!.evidence[0]!.seq).toBe(unseen.seq);
    expect(engine.progress()).toBe(unseen.seq);

    // Resumed twice (a second crash before progress was saved): stored once.
    const again = new AnomalyEngine({ rules: [new DeadTaskTokenRule()], store: rig.store });
    await resumeAnomalyEngine(again, rig.storage.audit, { warmEvents: 100, cursor: progress });
    await again.idle();
    expect((await rig.store.list()).alerts).toHaveLength(1);
    // No stored progress (a new deployment): history is only learned from.
    const fresh = new AnomalyEngine({ rules: [new DeadTaskTokenRule()], store: rig.store });
    expect(await resumeAnomalyEngine(fresh, rig.storage.audit, { warmEvents: 100, cursor: 0 })).toEqual({
      warmed: 4,
      resumed: 0,
    });
    await rig.close();
  });

  it('does not move its progress past a finding storage refused, so the next start raises it again', async () => {
    let refuse = true;
    const rig = await anomalyRig([]);
    const failing = {
      raise: (finding: Parameters<typeof rig.store.raise>[0]) =>
        refuse ? Promise.reject(new Error('storage down')) : rig.store.raise(finding),
    };
    const engine = new AnomalyEngine({ rules: [new DeadTaskTokenRule()], store: failing, storeRetryMs: [1] });
    rig.log.observe(engine.offer);
    await rig.record(taskRequest(task, { path: 'kv/app/db' }));
    const dead = await rig.record(deadTokenRequest(task, 'task_revoked'));
    await rig.record(taskRequest(task, { path: 'kv/app/db' }));
    await engine.idle();
    expect(engine.stats().lost).toBe(1);
    expect(engine.progress()).toBe(dead.seq - 1);
    refuse = false;
    const next = new AnomalyEngine({ rules: [new DeadTaskTokenRule()], store: rig.store });
    await resumeAnomalyEngine(next, rig.storage.audit, { warmEvents: 100, cursor: engine.progress() });
    await next.idle();
    expect((await rig.store.list()).alerts.map((a) => a.evidence[0]!.seq)).toEqual([dead.seq]);
    await rig.close();
  });

  it('keeps findings sealed: the database row holds no path, identity or explanation', async () => {
    const rig = await anomalyRig([new DeadTaskTokenRule()]);
    await rig.record(deadTokenRequest(task, 'task_revoked'));
    await rig.engine.idle();
    const rows = await rig.storage.entries.scan('alert', '');
    expect(rows).toHaveLength(1);
    const raw = Buffer.from(rows[0]!.value).toString('latin1');
    expect(raw).not.toContain(task.identity);
    expect(raw).not.toContain(task.id);
    expect(raw).not.toContain('revoked');
    await rig.close();
  });

  it('pages newest first, filters by state, rule and severity, and acknowledges once', async () => {
    const rig = await anomalyRig([new DeadTaskTokenRule({ cooldownMs: 0 }), new BootstrapReuseRule()]);
    for (let i = 0; i < 5; i++) await rig.record(deadTokenRequest({ ...task, id: `tsk_dead0${i}` }, 'task_revoked'));
    await rig.record({
      type: 'security_alert',
      kind: 'bootstrap_token_reused',
      request_id: 'req-reuse',
      request: { method: 'POST', route: '/v1/auth/bootstrap/login', source_ip: '203.0.113.9' },
      details: { bootstrap_accessor: 'bac_fake0000000000000000' },
    });
    await rig.engine.idle();
    const page1 = await rig.store.list({ limit: 4 });
    expect(page1.alerts.map((a) => a.rule)).toEqual([
      'bootstrap-token-reuse',
      'dead-task-token',
      'dead-task-token',
      'dead-task-token',
    ]);
    expect(page1.next_cursor).toBeDefined();
    const page2 = await rig.store.list({ limit: 4, cursor: page1.next_cursor! });
    expect(page2.alerts.map((a) => a.subject.task_id)).toEqual(['tsk_dead01', 'tsk_dead00']);
    expect(page2.next_cursor).toBeUndefined();
    expect((await rig.store.list({ rule: 'dead-task-token' })).alerts).toHaveLength(5);
    expect((await rig.store.list({ severity: 'critical' })).alerts.map((a) => a.rule)).toEqual([
      'bootstrap-token-reuse',
    ]);
    const target = page1.alerts[1]!;
    const acked = await rig.store.ack(target.id, 'acc_operator', new Date(rig.clock.ms));
    expect(acked).toMatchObject({ state: 'acked', acked_by: 'acc_operator' });
    const again = await rig.store.ack(target.id, 'acc_other', new Date(rig.clock.ms + 5_000));
    expect(again.acked_by).toBe('acc_operator');
    expect((await rig.store.list({ state: 'acked' })).alerts.map((a) => a.id)).toEqual([target.id]);
    expect((await rig.store.list({ state: 'open' })).alerts).toHaveLength(5);
    await expect(rig.store.list({ limit: 101 })).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
    await expect(rig.store.list({ cursor: '../x' })).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
    await expect(rig.store.get('al_nope')).rejects.toMatchObject({ code: 'CUSTOS_ERR_NOT_FOUND' });
    await rig.close();
  });
});
