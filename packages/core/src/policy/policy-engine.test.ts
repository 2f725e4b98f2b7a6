import { describe, expect, it } from 'vitest';
import { CustosError } from '../errors/index.js';
import type { AuthzRequest } from './authz-request.js';
import type { PolicyAction } from './policy-action.js';
import { PolicyEngine } from './policy-engine.js';
import { pathAncestors } from './resource-path.js';

const A = (a: string) => `Custos::Action::"${a}"`;
const P = (p: string) => `Custos::Path::"${p}"`;

function token(policies: string[], path: string, action: PolicyAction = 'read', context: AuthzRequest['context'] = {}) {
  return {
    principal: { type: 'Token' as const, id: 'tok-1' },
    policies,
    action,
    path,
    context,
  };
}

function errorOf(fn: () => unknown): CustosError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CustosError);
    return e as CustosError;
  }
  throw new Error('expected a CustosError');
}

describe('PolicyEngine: grants', () => {
  const engine = new PolicyEngine();
  engine.set('finance', `permit(principal, action in [${A('read')}, ${A('list')}], resource in ${P('kv/finance/')});`);
  engine.set(
    'shared',
    `permit(principal, action == ${A('read')}, resource) when { resource.path like "kv/*/shared/*" };`,
  );

  it('grants everything below a folder, and the folder itself', () => {
    expect(engine.authorize(token(['finance'], 'kv/finance/enrichment-api'))).toEqual({
      allowed: true,
      reasons: ['finance#0'],
      errors: [],
    });
    expect(engine.authorize(token(['finance'], 'kv/finance/deep/er/key')).allowed).toBe(true);
    expect(engine.authorize(token(['finance'], 'kv/finance/', 'list')).allowed).toBe(true);
  });

  it('does not grant siblings, parents or other actions', () => {
    expect(engine.authorize(token(['finance'], 'kv/financials/x')).allowed).toBe(false);
    expect(engine.authorize(token(['finance'], 'kv/finance')).allowed).toBe(false);
    expect(engine.authorize(token(['finance'], 'kv/', 'list')).allowed).toBe(false);
    expect(engine.authorize(token(['finance'], 'kv/finance/x', 'write')).allowed).toBe(false);
    expect(engine.authorize(token(['finance'], 'kv/finance/x', 'delete'))).toEqual({
      allowed: false,
      reasons: [],
      errors: [],
    });
  });

  it('matches `like` patterns on resource.path', () => {
    expect(engine.authorize(token(['shared'], 'kv/ml/shared/hf-token')).allowed).toBe(true);
    expect(engine.authorize(token(['shared'], 'kv/ml/private/hf-token')).allowed).toBe(false);
  });

  it('applies only the policies the principal holds', () => {
    expect(engine.authorize(token(['shared'], 'kv/finance/enrichment-api')).allowed).toBe(false);
    expect(engine.authorize(token([], 'kv/finance/enrichment-api')).allowed).toBe(false);
  });

  it('ignores unknown policy names', () => {
    expect(engine.authorize(token(['no-such-policy'], 'kv/finance/x')).allowed).toBe(false);
    expect(engine.authorize(token(['no-such-policy', 'finance'], 'kv/finance/x')).allowed).toBe(true);
  });

  it('does not care about the order or repetition of held names', () => {
    expect(engine.authorize(token(['shared', 'finance', 'finance'], 'kv/finance/x')).reasons).toEqual(['finance#0']);
  });

  it('covers system paths with the same mechanism', () => {
    const e = new PolicyEngine();
    e.set(
      'policy-admin',
      `permit(principal, action in [${A('write')}, ${A('delete')}], resource in ${P('sys/policies/')});`,
    );
    expect(e.authorize(token(['policy-admin'], 'sys/policies/finance', 'write')).allowed).toBe(true);
    expect(e.authorize(token(['policy-admin'], 'sys/audit', 'write')).allowed).toBe(false);
  });
});

describe('PolicyEngine: forbid', () => {
  it('a forbid in one held policy overrides a permit in another', () => {
    const engine = new PolicyEngine();
    engine.set('team', `permit(principal, action, resource in ${P('kv/team/')});`);
    engine.set('no-prod', `forbid(principal, action, resource) when { resource.path like "kv/team/prod-*" };`);
    expect(engine.authorize(token(['team'], 'kv/team/prod-db')).allowed).toBe(true);
    expect(engine.authorize(token(['team', 'no-prod'], 'kv/team/prod-db'))).toEqual({
      allowed: false,
      reasons: ['no-prod#0'],
      errors: [],
    });
    expect(engine.authorize(token(['team', 'no-prod'], 'kv/team/dev-db')).allowed).toBe(true);
  });

  it('keeps integer literals beyond 2^53 exact', () => {
    const engine = new PolicyEngine();
    // As a JS number, 9007199254740993 would become ...992 and match.
    engine.set(
      'big',
      `permit(principal, action, resource in ${P('kv/a/')}) when { context.depth + 9007199254740992 == 9007199254740993 };`,
    );
    expect(engine.authorize(token(['big'], 'kv/a/x', 'read', { depth: 0 })).allowed).toBe(false);
    expect(engine.authorize(token(['big'], 'kv/a/x', 'read', { depth: 1 })).allowed).toBe(true);
    expect(engine.authorize(token(['big'], 'kv/b/x', 'read', { depth: 1 })).allowed).toBe(false);
  });

  it('denies when a forbid fails to evaluate, where Cedar alone would skip it', () => {
    const engine = new PolicyEngine();
    engine.set('all', 'permit(principal, action, resource);');
    // Overflows at run time: the validator cannot see it.
    engine.set('odd', 'forbid(principal, action, resource) when { context.now.epoch * 9223372036854775807 > 0 };');
    const d = engine.authorize(token(['all', 'odd'], 'kv/x'));
    expect(d).toEqual({ allowed: false, reasons: ['odd#0'], errors: ['odd#0'] });
  });
});

describe('PolicyEngine: context', () => {
  it('"this GPU node may read the model-store key only between 08:00 and 18:00 UTC" is one statement', () => {
    const engine = new PolicyEngine();
    engine.set(
      'gpu-hours',
      `permit(principal == Custos::Identity::"gpu-node-7", action == ${A('read')}, resource == ${P('kv/ml/model-store-key')}) when { context.now.hour >= 8 && context.now.hour < 18 };`,
    );
    const at = (iso: string, id = 'gpu-node-7') =>
      engine.authorize({
        principal: { type: 'Identity', id, attrs: { role: 'inference' } },
        policies: ['gpu-hours'],
        action: 'read',
        path: 'kv/ml/model-store-key',
        context: { now: new Date(iso) },
      }).allowed;
    expect(at('2025-06-02T07:59:59Z')).toBe(false);
    expect(at('2025-06-02T08:00:00Z')).toBe(true);
    expect(at('2025-06-02T17:59:59Z')).toBe(true);
    expect(at('2025-06-02T18:00:00Z')).toBe(false);
    // UTC, whatever the offset the Date was written with.
    expect(at('2025-06-02T09:30:00+02:00')).toBe(false);
    expect(at('2025-06-02T12:00:00Z', 'gpu-node-8')).toBe(false);
  });

  it('exposes weekday, date, minute and epoch', () => {
    const engine = new PolicyEngine();
    engine.set(
      'window',
      `permit(principal, action, resource) when { context.now.weekday == 1 && context.now.date == "2025-06-02" && context.now.minute == 30 && context.now.epoch == 1748856600 };`,
    );
    expect(engine.authorize(token(['window'], 'kv/x', 'read', { now: new Date('2025-06-02T09:30:00Z') })).allowed).toBe(
      true,
    );
    expect(engine.authorize(token(['window'], 'kv/x', 'read', { now: new Date('2025-06-02T09:31:00Z') })).allowed).toBe(
      false,
    );
  });

  it('matches the source address against ranges, IPv4-mapped IPv6 included', () => {
    const engine = new PolicyEngine();
    engine.set(
      'lan',
      `permit(principal, action, resource) when { context.source_ip.isInRange(ip("10.0.0.0/8")) || context.source_ip.isInRange(ip("fd00::/8")) };`,
    );
    const from = (sourceIp?: string) =>
      engine.authorize(token(['lan'], 'kv/x', 'read', sourceIp === undefined ? {} : { sourceIp })).allowed;
    expect(from('10.1.2.3')).toBe(true);
    expect(from('::ffff:10.1.2.3')).toBe(true);
    expect(from('fd12::1')).toBe(true);
    expect(from('fe80::1%eth0')).toBe(false);
    expect(from('192.168.1.1')).toBe(false);
    expect(from(undefined)).toBe(false);
    expect(errorOf(() => from('10.1.2')).code).toBe('CUSTOS_ERR_VALIDATION');
  });

  it('passes delegation depth, task chain and task attributes; a task is in its identity', () => {
    const engine = new PolicyEngine();
    engine.set(
      'agents',
      `permit(principal is Custos::Task in Custos::Identity::"coordinator", action == ${A('read')}, resource in ${P('kv/agents/')})
         when { context.depth <= 2 && context.task_chain.contains("task-root") && principal.labels.contains("pii-ok") };`,
    );
    const task = (depth: number, labels: string[], identity = 'coordinator') =>
      engine.authorize({
        principal: {
          type: 'Task',
          id: `task-${depth}`,
          attrs: { role: 'enricher', depth, labels },
          parents: [{ type: 'Identity', id: identity }],
        },
        policies: ['agents'],
        action: 'read',
        path: 'kv/agents/key',
        context: { taskChain: ['task-root', `task-${depth}`] },
      }).allowed;
    expect(task(1, ['pii-ok'])).toBe(true);
    expect(task(2, ['pii-ok'])).toBe(true);
    expect(task(3, ['pii-ok'])).toBe(false);
    expect(task(1, [])).toBe(false);
    expect(task(1, ['pii-ok'], 'someone-else')).toBe(false);
  });

  it('gives operator tokens depth 0 and their policy list', () => {
    const engine = new PolicyEngine();
    engine.set(
      'self',
      'permit(principal is Custos::Token, action, resource) when { context.depth == 0 && principal.policies.contains("self") };',
    );
    expect(engine.authorize(token(['self'], 'kv/x')).allowed).toBe(true);
  });
});

describe('PolicyEngine: validation', () => {
  const engine = new PolicyEngine();

  it('returns statement count and warnings, and stores nothing', () => {
    const v = engine.validate('ok', `permit(principal, action == ${A('read')}, resource) when { 1 == 2 };`);
    expect(v.statements).toBe(1);
    expect(v.warnings.join(' ')).toMatch(/impossible/);
    expect(engine.has('ok')).toBe(false);
  });

  it('rejects a syntax error with its line, column and message, briefly', () => {
    const text = `permit(principal, action, resource);\npermit(principal, action,\n  resource) when { resource.path like "kv/*" ;`;
    const e = errorOf(() => engine.validate('broken', text));
    expect(e.code).toBe('CUSTOS_ERR_INVALID_POLICY');
    expect(e.detail).toMatch(/^line 3:\d+: .*unexpected token `;`/);
    expect(e.detail?.length).toBeLessThanOrEqual(240);
  });

  it('rejects what does not fit the schema, with the validator hint', () => {
    const action = errorOf(() => engine.validate('x', `permit(principal, action == ${A('reed')}, resource);`));
    expect(action.detail).toBe(
      'line 1:29: unrecognized action `Custos::Action::"reed"`; did you mean `Custos::Action::"read"`?',
    );
    const attr = errorOf(() =>
      engine.validate('x', 'permit(principal, action, resource) when { resource.owner == "me" };'),
    );
    expect(attr.code).toBe('CUSTOS_ERR_INVALID_POLICY');
    expect(attr.detail).toMatch(/attribute `owner`/);
    const ctx = errorOf(() =>
      engine.validate('x', 'permit(principal, action, resource) when { context.source_ip == "10.0.0.1" };'),
    );
    expect(ctx.code).toBe('CUSTOS_ERR_INVALID_POLICY');
  });

  it('counts further errors and caps the detail length', () => {
    const many = Array.from({ length: 5 }, (_, i) => `permit(principal, action == ${A(`nope${i}`)}, resource);`).join(
      '\n',
    );
    expect(errorOf(() => engine.validate('x', many)).detail).toMatch(/\(\+4 more\)$/);
    const long = `permit(principal, action == ${A('x'.repeat(2000))}, resource);`;
    expect(errorOf(() => engine.validate('x', long)).detail?.length).toBeLessThanOrEqual(240);
  });

  it('rejects templates, empty documents and oversized ones', () => {
    expect(errorOf(() => engine.validate('x', 'permit(principal == ?principal, action, resource);')).detail).toMatch(
      /template/,
    );
    expect(errorOf(() => engine.validate('x', '// nothing here\n')).detail).toMatch(/no permit or forbid/);
    expect(errorOf(() => engine.validate('x', `// ${'x'.repeat(70_000)}`)).code).toBe('CUSTOS_ERR_INVALID_POLICY');
  });

  it.each(['', 'Upper', '-lead', '_lead', 'a b', 'a#1', 'a/b', 'x'.repeat(65)])('rejects the name %j', (name) => {
    expect(errorOf(() => engine.set(name, 'permit(principal, action, resource);')).code).toBe('CUSTOS_ERR_VALIDATION');
  });

  it.each(['a', '0', 'finance-read', 'team_a.v2', 'x'.repeat(64)])('accepts the name %j', (name) => {
    expect(engine.validate(name, 'permit(principal, action, resource);').statements).toBe(1);
  });

  it('an invalid replacement leaves the stored policy in place', () => {
    const e = new PolicyEngine();
    e.set('p', 'permit(principal, action, resource);');
    expect(() => e.set('p', 'permit(')).toThrow(CustosError);
    expect(e.authorize(token(['p'], 'kv/x')).allowed).toBe(true);
  });
});

describe('PolicyEngine: paths', () => {
  it.each(['', '/kv/x', 'kv//x', 'kv/../x', 'kv/./x', 'kv/x\n', 'x'.repeat(1025)])('rejects the path %j', (path) => {
    const engine = new PolicyEngine();
    engine.set('all', 'permit(principal, action, resource);');
    expect(errorOf(() => engine.authorize(token(['all'], path))).code).toBe('CUSTOS_ERR_INVALID_PATH');
    // Even when nothing is held: a bad path is an error, not a quiet deny.
    expect(errorOf(() => engine.authorize(token([], path))).code).toBe('CUSTOS_ERR_INVALID_PATH');
  });

  it('derives folder ancestors', () => {
    expect(pathAncestors('kv/finance/enrichment-api')).toEqual(['kv/finance/', 'kv/']);
    expect(pathAncestors('kv/finance/')).toEqual(['kv/']);
    expect(pathAncestors('kv')).toEqual([]);
  });
});

describe('PolicyEngine: statement ids', () => {
  it('numbers statements in source order, beyond ten', () => {
    const engine = new PolicyEngine();
    const text = Array.from(
      { length: 12 },
      (_, i) => `permit(principal, action == ${A('read')}, resource == ${P(`kv/s${i}`)});`,
    ).join('\n');
    engine.set('many', text);
    for (let i = 0; i < 12; i++) {
      expect(engine.authorize(token(['many'], `kv/s${i}`)).reasons).toEqual([`many#${i}`]);
    }
  });
});

describe('PolicyEngine: changes and caches', () => {
  it('replacing and removing a policy takes effect at once', () => {
    const engine = new PolicyEngine();
    engine.set('p', `permit(principal, action, resource in ${P('kv/a/')});`);
    engine.set('q', `permit(principal, action, resource in ${P('kv/q/')});`);
    expect(engine.authorize(token(['p', 'q'], 'kv/a/x')).allowed).toBe(true);
    const cached = engine.stats().cachedSets;
    expect(cached).toBeGreaterThan(0);

    engine.set('p', `permit(principal, action, resource in ${P('kv/b/')});`);
    expect(engine.stats().cachedSets).toBeLessThan(cached);
    expect(engine.authorize(token(['p', 'q'], 'kv/a/x')).allowed).toBe(false);
    expect(engine.authorize(token(['p', 'q'], 'kv/b/x')).allowed).toBe(true);

    expect(engine.remove('p')).toBe(true);
    expect(engine.remove('p')).toBe(false);
    expect(engine.has('p')).toBe(false);
    expect(engine.authorize(token(['p', 'q'], 'kv/b/x')).allowed).toBe(false);
    expect(engine.authorize(token(['p', 'q'], 'kv/q/x')).allowed).toBe(true);

    // A name that comes back is a new policy, not the old cached one.
    engine.set('p', 'forbid(principal, action, resource);');
    expect(engine.authorize(token(['p', 'q'], 'kv/q/x')).allowed).toBe(false);
    expect(engine.names()).toEqual(['p', 'q']);
    expect(engine.get('p')).toBe('forbid(principal, action, resource);');
  });

  it('parses policies on change, never per request', () => {
    const engine = new PolicyEngine({ maxDecisionsPerSet: 0 });
    engine.set(
      'a',
      `permit(principal, action == ${A('read')}, resource in ${P('kv/a/')}) when { context.now.hour < 25 };`,
    );
    engine.set('b', `permit(principal, action == ${A('read')}, resource in ${P('kv/b/')});`);
    engine.set('c', `forbid(principal, action, resource) when { resource.path like "*secret*" };`);
    const ask = (i: number) =>
      engine.authorize(
        token(['a', 'b', 'c'], `kv/${i % 2 ? 'a' : 'b'}/k${i}`, 'read', {
          now: new Date(1_700_000_000_000 + i * 1000),
        }),
      );
    ask(0);
    ask(1);
    const warm = engine.stats();
    for (let i = 0; i < 300; i++) expect(ask(i).allowed).toBe(true);
    const after = engine.stats();
    expect(after.preparses).toBe(warm.preparses);
    expect(after.evaluations - warm.evaluations).toBe(300);
    engine.set('b', `permit(principal, action == ${A('read')}, resource in ${P('kv/b/')});`);
    ask(0);
    expect(engine.stats().preparses).toBe(warm.preparses + 1);
  });

  it('memoises identical questions only', () => {
    const engine = new PolicyEngine();
    engine.set('h', `permit(principal, action, resource) when { context.now.hour < 12 };`);
    const at = (iso: string) => engine.authorize(token(['h'], 'kv/x', 'read', { now: new Date(iso) }));
    expect(at('2025-01-01T10:00:00Z').allowed).toBe(true);
    // The policy reads only `now`, but `now` includes the epoch: a second later is a new question.
    expect(at('2025-01-01T10:00:00Z').allowed).toBe(true);
    expect(engine.stats()).toMatchObject({ evaluations: 1, memoHits: 1 });
    expect(at('2025-01-01T13:00:00Z').allowed).toBe(false);
    expect(engine.stats()).toMatchObject({ evaluations: 2, memoHits: 1 });
  });

  it('stays bounded and correct with more combinations than cache slots', () => {
    const engine = new PolicyEngine({ maxCachedSets: 2 });
    for (let i = 0; i < 6; i++) engine.set(`p${i}`, `permit(principal, action, resource in ${P(`kv/${i}/`)});`);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 6; i++) {
        expect(engine.authorize(token([`p${i}`], `kv/${i}/x`)).allowed).toBe(true);
        expect(engine.authorize(token([`p${i}`], `kv/${(i + 1) % 6}/x`)).allowed).toBe(false);
        expect(engine.stats().cachedSets).toBeLessThanOrEqual(2);
      }
    }
  });

  it('keeps two engines in one process apart', async () => {
    const one = await PolicyEngine.create();
    const two = await PolicyEngine.create();
    one.set('p', 'permit(principal, action, resource);');
    two.set('p', 'forbid(principal, action, resource);');
    expect(one.authorize(token(['p'], 'kv/x')).allowed).toBe(true);
    expect(two.authorize(token(['p'], 'kv/x')).allowed).toBe(false);
  });
});
