import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTaskMinter } from '../custos/task-minter.js';
import { StorageError } from '../errors/index.js';
import type { Storage } from '../ports/storage.js';
import { EventBus } from '../rotation/event-bus.js';
import type { CustosEvent } from '../rotation/rotation-types.js';
import { TaskSigningKeys } from '../task-tokens/index.js';
import { RoleService, TaskService } from '../tasks/index.js';
import { anomalyRig } from '../test-support/anomaly-rig.js';
import type { Finding, FindingSubject } from './finding.js';
import { findingId } from './finding-store.js';
import type { QuarantineConfig } from './quarantine-config.js';
import { QuarantineRunner } from './quarantine-runner.js';

// The quarantine runner over real SQLite: the real role and task services
// act, the real audit log records, the real finding store keeps the outcome.

let seq = 0;

async function setup(config: QuarantineConfig, options: { takeoverMs?: number } = {}) {
  const rig = await anomalyRig([]);
  let failing = 0;
  // Storage that refuses the next `failing` transactions, as a database restarting would.
  const flaky: Pick<Storage, 'entries' | 'transaction'> = {
    entries: rig.storage.entries,
    transaction: (fn) => (failing-- > 0 ? Promise.reject(new StorageError()) : rig.storage.transaction(fn)),
  };
  const roles = new RoleService({ storage: flaky, cipher: rig.barrier });
  const keys = await TaskSigningKeys.load(rig.storage.entries, rig.barrier);
  const tasks = new TaskService({
    storage: rig.storage,
    cipher: rig.barrier,
    roles: new RoleService({ storage: rig.storage, cipher: rig.barrier }),
    minter: createTaskMinter(keys, { issuer: 'https://custos.test', audience: 'custos' }),
    accessorKey: randomBytes(32),
  });
  const events = new EventBus();
  const published: CustosEvent[] = [];
  events.subscribe((event) => published.push(event));
  const reports: string[] = [];
  const runner = new QuarantineRunner({
    tasks,
    roles,
    store: rig.store,
    audit: rig.log,
    events,
    config,
    retryMs: [1, 1],
    ...(options.takeoverMs !== undefined ? { takeoverMs: options.takeoverMs } : {}),
    report: (what) => reports.push(what),
  });
  const role = await roles.write('agent', { policies: [], max_ttl_ms: 600_000, max_depth: 3 });
  const root = await tasks.start({ role, sub: 'spiffe://custos.local/agent/a1', via: 'operator' });
  const { sub, id: task_id, scope, chain } = root.task;
  const parent = {
    sub,
    task_id,
    parent_task_id: null,
    scope,
    depth: 0,
    role: 'agent',
    chain,
    act: null,
    exp: 0,
    jkt: null,
  };
  const child = await tasks.delegate(parent, {}, role);
  const finding = async (rule: string, subject: FindingSubject, severity: Finding['severity'] = 'high') => {
    const raised: Finding = {
      id: findingId(rule, rig.clock.ms, ++seq),
      rule,
      severity,
      time: new Date(rig.clock.ms).toISOString(),
      state: 'open',
      subject,
      evidence: [],
      explanation: 'A test finding.',
    };
    await rig.store.raise(raised);
    return raised;
  };
  const quarantineEvents = async () => {
    // `record` resolves once the event is durable: everything the runner recorded is in the store.
    const records = await rig.storage.audit.range(1, 10_000);
    return records
      .map((record) => JSON.parse(record.event) as Record<string, unknown>)
      .filter((event) => event.type === 'quarantine');
  };
  const failTransactions = (n: number) => {
    failing = n;
  };
  return { rig, roles, tasks, runner, root, child, finding, published, reports, quarantineEvents, failTransactions };
}

describe('quarantine actions', () => {
  it('suspends, then revokes the whole tree from its root, once however often the finding is raised', async () => {
    const t = await setup({ rules: { 'request-burst': ['revoke-task-tree', 'suspend-identity', 'suspend-role'] } });
    const subject = { task_id: t.child.task.id, identity: t.child.task.sub, role: 'agent' };
    const f = await t.finding('request-burst', subject);
    await t.runner.run(f);
    await t.runner.run(f);
    const shown = await t.rig.store.get(f.id);
    expect(shown.actions?.map((a) => [a.action, a.outcome])).toEqual([
      ['suspend-role', 'done'],
      ['suspend-identity', 'done'],
      ['revoke-task-tree', 'done'],
    ]);
    expect(shown.actions?.[2]?.target).toEqual({ task_id: t.root.task.id, role: 'agent' });
    // The root's whole tree is over: the offending child and the root that handed it its grant.
    for (const id of [t.root.task.id, t.child.task.id]) expect((await t.tasks.show(id)).state).toBe('revoked');
    const role = await t.roles.read('agent');
    expect(role.suspended).toMatchObject({ by: `alert:${f.id}`, finding_id: f.id, rule: 'request-burst' });
    expect(Object.keys(role.suspended_identities ?? {})).toEqual([t.child.task.sub]);
    const audited = await t.quarantineEvents();
    expect(audited.map((e) => e.kind)).toEqual(['suspend_role', 'suspend_identity', 'revoke_task_tree']);
    for (const event of audited) expect(event.details).toMatchObject({ finding_id: f.id, rule: 'request-burst' });
    expect(t.published.map((e) => e.type === 'alert.action' && [e.action, e.outcome])).toEqual([
      ['suspend-role', 'done'],
      ['suspend-identity', 'done'],
      ['revoke-task-tree', 'done'],
    ]);
    expect(t.reports).toEqual([]);
    await t.rig.close();
  });

  it('acts only on what a verified credential named, only for rules with actions, only above the severity floor', async () => {
    const t = await setup({ rules: { 'denied-spike': ['suspend-role', 'revoke-task-tree'] }, minSeverity: 'medium' });
    // A refusal with no verified caller names a source address only: nothing to act on.
    const anonymous = await t.finding('denied-spike', { source_ip: '198.51.100.7' });
    await t.runner.run(anonymous);
    expect((await t.rig.store.get(anonymous.id)).actions?.map((a) => [a.outcome, a.detail])).toEqual([
      ['skipped', 'no role in the finding'],
      ['skipped', 'no task in the finding'],
    ]);
    // Below the floor, and a rule without actions: nothing at all.
    const low = await t.finding('denied-spike', { role: 'agent', task_id: t.root.task.id }, 'low');
    await t.runner.run(low);
    const other = await t.finding('first-access', { role: 'agent', task_id: t.root.task.id });
    await t.runner.run(other);
    // `honeytoken` revokes by default (nobody legitimate touches a decoy).
    const decoy = await t.finding('honeytoken', { role: 'agent', task_id: t.child.task.id }, 'critical');
    await t.runner.run(decoy);
    expect((await t.rig.store.get(low.id)).actions).toBeUndefined();
    expect((await t.rig.store.get(other.id)).actions).toBeUndefined();
    expect((await t.rig.store.get(decoy.id)).actions?.map((a) => [a.action, a.outcome])).toEqual([
      ['revoke-task-tree', 'done'],
    ]);
    expect((await t.roles.read('agent')).suspended).toBeUndefined();
    await t.rig.close();
  });

  it('retries a storage failure, records one that persists as failed and reports it, and never throws', async () => {
    const t = await setup({ rules: { 'request-burst': ['suspend-role'] } });
    const f = await t.finding('request-burst', { role: 'agent', task_id: t.root.task.id });
    t.failTransactions(2);
    await t.runner.run(f);
    expect((await t.rig.store.get(f.id)).actions).toEqual([
      expect.objectContaining({ action: 'suspend-role', outcome: 'done', attempts: 3 }),
    ]);
    const down = await setup({ rules: { 'request-burst': ['suspend-role'] } });
    const g = await down.finding('request-burst', { role: 'agent', task_id: down.root.task.id });
    down.failTransactions(100);
    await expect(down.runner.run(g)).resolves.toBeUndefined();
    expect((await down.rig.store.get(g.id)).actions).toEqual([
      expect.objectContaining({ action: 'suspend-role', outcome: 'failed', attempts: 3, detail: 'CUSTOS_ERR_STORAGE' }),
    ]);
    expect(down.reports).toEqual(['quarantine:suspend-role']);
    expect((await down.quarantineEvents()).map((e) => (e.details as { outcome: string }).outcome)).toEqual(['failed']);
    await t.rig.close();
    await down.rig.close();
  });

  it('takes over the actions of a runner that died mid-way, and only then', async () => {
    const t = await setup({ rules: { 'request-burst': ['suspend-role'] } }, { takeoverMs: 0 });
    const f = await t.finding('request-burst', { role: 'agent', task_id: t.root.task.id });
    // A runner on another node claimed the finding and died before finishing.
    expect(await t.rig.store.claimActions(f.id, new Date(Date.now() - 1_000))).toBe(true);
    await t.runner.run(f);
    expect((await t.rig.store.get(f.id)).actions).toEqual([expect.objectContaining({ outcome: 'done' })]);
    const patient = await setup({ rules: { 'request-burst': ['suspend-role'] } });
    const g = await patient.finding('request-burst', { role: 'agent', task_id: patient.root.task.id });
    expect(await patient.rig.store.claimActions(g.id, new Date())).toBe(true);
    await patient.runner.run(g);
    // Claimed a moment ago: its runner may still be at work, so nothing is done twice.
    expect((await patient.roles.read('agent')).suspended).toBeUndefined();
    await t.rig.close();
    await patient.rig.close();
  });
});
