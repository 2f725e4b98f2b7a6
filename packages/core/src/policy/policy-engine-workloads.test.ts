import { describe, expect, it } from 'vitest';
import type { AuthzRequest } from './authz-request.js';
import { PolicyEngine } from './policy-engine.js';

// The workloads of bench/core.bench.mjs (a token holding 3 policies of 5
// statements), checked by the work the engine does rather than by the time
// it takes: no policy is parsed again per decision, each decision without
// the memo is one evaluation, and repeated questions cost none. How fast it
// decides is measured by `npm run bench`, not here.

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

const request = (path: string): AuthzRequest => ({
  principal: { type: 'Token', id: 'tok-1' },
  policies: ['team-0', 'team-1', 'team-2'],
  action: 'read',
  path,
  context: { now: new Date('2025-03-04T10:00:00Z'), sourceIp: '10.1.2.3' },
});

describe('PolicyEngine: the benchmark workloads, by the work they cost', () => {
  it.each([
    ['allow, every path new (memo off)', { maxDecisionsPerSet: 0 }, (i: number) => `kv/team2/s3/key-${i}`, true],
    ['deny, only a forbid in scope (memo off)', { maxDecisionsPerSet: 0 }, (i: number) => `kv/other/k-${i}`, false],
  ] as const)('%s: one evaluation per decision, no parsing', (_, options, path, allowed) => {
    const engine = engineWith(options);
    engine.authorize(request(path(-1)));
    const warm = engine.stats();
    for (let i = 0; i < 3_000; i++) expect(engine.authorize(request(path(i))).allowed).toBe(allowed);
    const after = engine.stats();
    expect(after.preparses).toBe(warm.preparses);
    expect(after.evaluations - warm.evaluations).toBe(3_000);
    expect(after.memoHits).toBe(warm.memoHits);
  });

  it('allow, 100 hot paths (memo on): each question is evaluated once, every repeat is a memo hit', () => {
    const engine = engineWith({});
    const path = (i: number) => `kv/team2/s3/key-${i % 100}`;
    const before = engine.stats();
    for (let i = 0; i < 20_000; i++) expect(engine.authorize(request(path(i))).allowed).toBe(true);
    const after = engine.stats();
    expect(after.evaluations - before.evaluations).toBe(100);
    expect(after.memoHits - before.memoHits).toBe(19_900);
    // The set was preparsed once, for the first question.
    expect(after.preparses - before.preparses).toBeLessThanOrEqual(1);
  });
});
