import { describe, expect, it } from 'vitest';
import type { AuditEventInput } from '../../audit/audit-event.js';
import { anomalyRig, taskRequest } from '../../test-support/anomaly-rig.js';
import { FirstAccessRule } from './first-access-rule.js';

// first-access on upstreams: proxied calls as the proxy records them (proxy-audit.ts), on a real SQLite audit log.

const HOUR = 3_600_000;
const agent = { id: 'tsk_a1', identity: 'spiffe://custos.local/agent/writer', role: 'writer' };
let n = 0;

/** One proxied call: base-url mode records `request` then `response`; a CONNECT is one `tunnel` record. */
function proxied(
  task: typeof agent,
  upstream: string,
  mode: 'base-url' | 'forward' | 'connect' = 'base-url',
  decision: 'allow' | 'deny' = 'allow',
): AuditEventInput[] {
  const request_id = `req-proxy-${++n}`;
  const auth = { task_id: task.id, identity: task.identity, role: task.role, task_chain: [task.id] };
  const route = mode === 'connect' ? 'CONNECT' : mode === 'forward' ? 'forward' : '/u/:name/*';
  const req = { method: mode === 'connect' ? 'CONNECT' : 'POST', route, path: `upstream/${upstream}`, action: 'use' };
  const proxy = mode === 'base-url' ? 'base-url' : 'forward';
  const common = { type: 'request' as const, request_id, auth, request: { ...req, source_ip: '127.0.0.1' } };
  if (decision === 'deny') {
    return [{ ...common, decision, status: 403, details: { phase: 'response', proxy, upstream } }];
  }
  if (mode === 'connect') return [{ ...common, decision, status: 200, details: { phase: 'tunnel', proxy, upstream } }];
  return [
    { ...common, decision, status: 0, details: { phase: 'request', proxy, upstream, upstream_path: '/v1/chat' } },
    { ...common, decision, status: 200, details: { phase: 'response', proxy, upstream, upstream_path: '/v1/chat' } },
  ];
}

describe('first-access on upstreams', () => {
  const rule = (config = {}) => new FirstAccessRule({ warmupMs: 24 * HOUR, warmupEvents: 20, ...config });

  it('fires once when a warmed-up role calls an upstream it never called, in either proxy mode', async () => {
    const rig = await anomalyRig([rule()]);
    // Two days of the usual: the LLM API through the base URL, its secret read directly, every hour.
    for (let i = 0; i < 48; i++) {
      for (const e of proxied(agent, 'openai')) await rig.record(e, 0);
      await rig.record(taskRequest(agent, { path: 'kv/app/config' }), HOUR);
    }
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    // Then a call to the payments API (twice), and a CONNECT tunnel to the source host.
    for (const e of [...proxied(agent, 'stripe'), ...proxied(agent, 'stripe', 'forward')]) await rig.record(e);
    for (const e of proxied(agent, 'github', 'connect')) await rig.record(e);
    await rig.engine.idle();
    const { alerts } = await rig.store.list();
    expect(alerts.map((a) => a.explanation.match(/never used (\S+) before/)?.[1]).sort()).toEqual([
      'upstream/github',
      'upstream/stripe',
    ]);
    expect(alerts[0]).toMatchObject({ rule: 'first-access', subject: { role: 'writer', task_id: agent.id } });
    expect(alerts[0]!.explanation).toContain('(action use, through the proxy)');
    await rig.close();
  });

  it('stays silent on refused calls, with upstreams turned off, and on the usual upstreams', async () => {
    const rig = await anomalyRig([rule()]);
    for (let i = 0; i < 48; i++) for (const e of proxied(agent, 'openai')) await rig.record(e, HOUR);
    // A refused call to a new upstream is not a use (denied-spike watches refusals).
    for (const e of proxied(agent, 'stripe', 'base-url', 'deny')) await rig.record(e);
    // The usual upstream, in the other mode: the same upstream.
    for (const e of proxied(agent, 'openai', 'connect')) await rig.record(e);
    await rig.engine.idle();
    expect((await rig.store.list()).alerts).toEqual([]);
    await rig.close();

    const off = await anomalyRig([rule({ upstreams: false })]);
    for (let i = 0; i < 48; i++) for (const e of proxied(agent, 'openai')) await off.record(e, HOUR);
    for (const e of proxied(agent, 'stripe')) await off.record(e);
    await off.engine.idle();
    expect((await off.store.list()).alerts).toEqual([]);
    await off.close();
  });
});
