import { describe, expect, it } from 'vitest';
import type { AuthzRequest } from './authz-request.js';
import { PolicyEngine } from './policy-engine.js';

// Throughput of the hot path for a token holding 3 policies of 5 statements.
// Prints µs per decision; the bound is loose on purpose (shared CI machines),
// it only catches a regression such as re-parsing policies per request.

const A = (a: string) => `Custos::Action::"${a}"`;

function engineWith(options: ConstructorParameters<typeof PolicyEngine>[0]): PolicyEngine {
  const engine = new PolicyEngine(options);
  for (let p = 0; p < 3; p++) {
    const statements = [];
    for (let i = 0; i < 4; i++) {
      statements.push(
        `permit(principal, action in [${A('read')}, ${A('list')}], resource in Custos::Path::"kv/team${p}/s${i}/")
           when { context.now.hour >= 6 && context.now.hour < 23 && context.source_ip.isInRange(ip("10.0.0.0/8")) };`,
      );
    }
    statements.push(
      p === 2
        ? 'forbid(principal, action, resource) when { resource.path like "kv/*/secret-*" };'
        : `permit(principal, action == ${A('write')}, resource in Custos::Path::"kv/team${p}/") when { context.depth == 0 };`,
    );
    engine.set(`team-${p}`, statements.join('\n'));
  }
  return engine;
}

function measure(engine: PolicyEngine, path: (i: number) => string, n: number): { us: number; allowed: number } {
  const now = new Date('2025-03-04T10:00:00Z');
  const req = (i: number): AuthzRequest => ({
    principal: { type: 'Token', id: 'tok-1' },
    policies: ['team-0', 'team-1', 'team-2'],
    action: 'read',
    path: path(i),
    context: { now, sourceIp: '10.1.2.3' },
  });
  for (let i = 0; i < 500; i++) engine.authorize(req(i));
  const preparsed = engine.stats().preparses;
  let allowed = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (engine.authorize(req(i)).allowed) allowed++;
  const us = Number(process.hrtime.bigint() - t0) / n / 1000;
  expect(engine.stats().preparses).toBe(preparsed);
  return { us, allowed };
}

describe('PolicyEngine throughput', () => {
  it('decides quickly without re-parsing', () => {
    const cases = [
      ['allow, every path new (memo off)', { maxDecisionsPerSet: 0 }, (i: number) => `kv/team2/s3/key-${i}`, 3000],
      ['deny, only a forbid in scope (memo off)', { maxDecisionsPerSet: 0 }, (i: number) => `kv/other/k-${i}`, 3000],
      ['allow, 100 hot paths (memo on)', {}, (i: number) => `kv/team2/s3/key-${i % 100}`, 20000],
    ] as const;
    for (const [label, options, path, n] of cases) {
      const engine = engineWith(options);
      const { us, allowed } = measure(engine, path, n);
      console.log(`policy engine: ${label}: ${us.toFixed(1)} µs/decision (${Math.round(1e6 / us)}/s)`);
      expect(allowed === 0 || allowed === n).toBe(true);
      expect(us).toBeLessThan(5000);
    }
  });
});
