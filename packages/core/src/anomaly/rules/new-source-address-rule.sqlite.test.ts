import { describe, expect, it } from 'vitest';
import { anomalyRig, taskRequest } from '../../test-support/anomaly-rig.js';
import { NewSourceAddressRule } from './new-source-address-rule.js';

// new-source-address against a real audit log on SQLite, fed events as the server records them.

const MIN = 60_000;
const HOUR = 3_600_000;
const node = (n: number) => ({
  id: `tsk_g${n}`,
  identity: `spiffe://custos.local/agent/gpu-infer-${n}`,
  role: 'gpu-infer',
});

describe('new-source-address', () => {
  const rule = (roles = {}) => new NewSourceAddressRule({ warmupMs: 24 * HOUR, warmupEvents: 20, roles });

  it('fires once, after warm-up, when an identity is used from a network neither it nor its role used', async () => {
    const rig = await anomalyRig([rule()]);
    // Two days of the usual: three nodes of the pool, each from its own address in one /24 (DHCP renumbers them).
    for (let i = 0; i < 96; i++) {
      const n = i % 3;
      await rig.record(
        taskRequest(node(n), { path: 'kv/models/store', sourceIp: `10.20.30.${10 + n + (i % 7)}` }),
        30 * MIN,
      );
    }
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    // Node 1's token, presented from a host on the internet; twice.
    await rig.record(taskRequest(node(1), { path: 'kv/models/store', sourceIp: '198.51.100.23' }));
    await rig.record(taskRequest(node(1), { path: 'kv/finance/x', decision: 'deny', sourceIp: '198.51.100.24' }));
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      rule: 'new-source-address',
      severity: 'medium',
      subject: { identity: node(1).identity, role: 'gpu-infer', source_ip: '198.51.100.23' },
    });
    expect(alerts[0]!.explanation).toMatch(
      /^Role gpu-infer and identity .* have never made a request from 198\.51\.100\.0\/24/,
    );
    await rig.close();
  });

  it('judges each identity on its own: a node moving to a network its role knows is new for it only', async () => {
    const rig = await anomalyRig([new NewSourceAddressRule({ warmupMs: HOUR, warmupEvents: 10, perRole: true })]);
    for (let i = 0; i < 40; i++) {
      await rig.record(taskRequest(node(i % 2), { path: 'kv/m', sourceIp: i % 2 ? '10.0.2.5' : '10.0.1.5' }), 10 * MIN);
    }
    await rig.record(taskRequest(node(0), { path: 'kv/m', sourceIp: '10.0.2.9' }));
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.explanation).toMatch(/^Identity .*gpu-infer-0 has never made a request from 10\.0\.2\.0\/24/);
    await rig.close();
  });

  it('stays silent on a realistic pool, during warm-up, for a role turned off, for root and operators', async () => {
    const rig = await anomalyRig([rule({ laptop: { disabled: true } })]);
    // Four dual-stack nodes, each in its own /24 and /64, renumbered inside them (DHCP, SLAAC privacy
    // addresses), for a week: every network is learned during warm-up, nothing is new afterwards.
    for (let i = 0; i < 400; i++) {
      const n = i % 4;
      const ip = (i >> 2) % 2 ? `10.9.${n}.${(i % 200) + 2}` : `2001:db8:0:${n}::${(i * 7919).toString(16).slice(-4)}`;
      await rig.record(taskRequest(node(n), { path: 'kv/m', sourceIp: ip }), 30 * MIN);
    }
    // A role turned off (developers' laptops, anywhere), well past warm-up.
    const laptop = { id: 'tsk_l', identity: 'user:dev', role: 'laptop' };
    for (let i = 0; i < 40; i++)
      await rig.record(taskRequest(laptop, { path: 'kv/dev', sourceIp: `198.51.${i}.1` }), HOUR);
    // Operators are not judged by default; root never.
    await rig.record({
      type: 'request',
      request_id: 'req-op',
      auth: { token_accessor: 'acc_op', root: true },
      request: { method: 'GET', route: '/v1/secrets/*', path: 'kv/m', action: 'read', source_ip: '203.0.113.1' },
      decision: 'allow',
      status: 200,
      details: { phase: 'response' },
    });
    // The before-record of a state-changing request is not judged (its outcome record is), nor a garbled address.
    await rig.record({
      ...taskRequest(node(0), { path: 'kv/m', sourceIp: '192.0.2.1' }),
      details: { phase: 'request' },
    });
    await rig.record(taskRequest(node(0), { path: 'kv/m', sourceIp: 'not-an-address' }));
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();
  });
});
