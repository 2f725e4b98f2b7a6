import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAuditHmac } from '../../audit/audit-hmac.js';
import { HoneytokenRegistry } from '../../honeytokens/honeytoken-registry.js';
import type { HoneytokenWatch } from '../../honeytokens/honeytoken-types.js';
import { anomalyRig, taskRequest } from '../../test-support/anomaly-rig.js';
import { HoneytokenRule } from './honeytoken-rule.js';

// The honeytoken rule against a real audit log on SQLite, with a real (sealed) registry as its watch.

const task = { id: 'tsk_h1', identity: 'spiffe://custos.local/clerk/1', role: 'clerk' };
const hmac = createAuditHmac(randomBytes(32));
const decoy = `AKIA${'QWERTYUIOPASDFGH'}`;

/** A rig whose rule watches a real registry, stored sealed in the rig's own storage. */
async function rigWithRegistry(config = {}) {
  let registry: HoneytokenRegistry | undefined;
  // The rule is built before the rig's storage exists; it reads the registry made right after.
  const watch: HoneytokenWatch = {
    get watching() {
      return registry!.watching;
    },
    hasPath: (path) => registry!.hasPath(path),
    hasFingerprint: (value) => registry!.hasFingerprint(value),
    findValue: (texts) => registry!.findValue(texts),
  };
  const rig = await anomalyRig([new HoneytokenRule(config, watch)]);
  registry = new HoneytokenRegistry({ entries: rig.storage.entries, cipher: rig.barrier, hmac });
  await registry.add({
    path: 'kv/finance/legacy-admin',
    kind: 'aws',
    created_time: new Date().toISOString(),
    created_by: 'root',
    fingerprints: [hmac(decoy)],
    lengths: [decoy.length],
  });
  return { rig, registry };
}

describe('honeytoken rule', () => {
  it('never fires without a registry, and never on other paths', async () => {
    const rig = await anomalyRig([new HoneytokenRule()]);
    await rig.record(taskRequest(task, { path: 'kv/finance/legacy-admin' }));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });

  it('one finding per subject and touch within the cooldown; a new subject or the cooldown over raises again', async () => {
    const { rig } = await rigWithRegistry({ cooldownMs: 60_000 });
    await rig.record(taskRequest(task, { path: 'kv/finance/other' }));
    await rig.record(taskRequest(task, { path: 'kv/finance/legacy-admin' }), 10_000);
    await rig.record(taskRequest(task, { path: 'kv/finance/legacy-admin' }), 60_000);
    await rig.record(taskRequest(task, { path: 'kv/finance/legacy-admin' }));
    await rig.record(taskRequest({ ...task, id: 'tsk_h2' }, { path: 'kv/finance/legacy-admin' }));
    // The scanner's fingerprint list (a path_read record) and a write are not touches.
    await rig.record({ ...taskRequest(task, { path: 'kv/finance/legacy-admin' }), details: { phase: 'path_read' } });
    await rig.record(
      taskRequest({ ...task, id: 'tsk_h3' }, { path: 'kv/finance/legacy-admin', action: 'write', method: 'PUT' }),
    );
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts.map((a) => a.subject.task_id).sort()).toEqual(['tsk_h1', 'tsk_h1', 'tsk_h2']);
    expect(alerts.every((a) => a.severity === 'critical' && a.rule === 'honeytoken')).toBe(true);
    await rig.close();
  });

  it('a refused credential whose HMAC is a decoy value: subject is the source address', async () => {
    const { rig } = await rigWithRegistry();
    const record = await rig.record({
      type: 'request',
      request_id: 'req-login',
      auth: {},
      request: { method: 'GET', route: '/v1/auth/token/self', source_ip: '203.0.113.5' },
      decision: 'deny',
      status: 401,
      data: { credential: hmac(decoy) },
      details: { phase: 'response' },
    });
    await rig.record({
      type: 'request',
      request_id: 'req-other',
      auth: {},
      request: { method: 'GET', route: '/v1/auth/token/self', source_ip: '203.0.113.6' },
      decision: 'deny',
      status: 401,
      data: { credential: hmac('cus_not-a-decoy') },
      details: { phase: 'response' },
    });
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      subject: { source_ip: '203.0.113.5' },
      evidence: [{ seq: record.seq, request_id: 'req-login' }],
    });
    await rig.close();
  });
});
