import { createRequire } from 'node:module';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { CustosError } from '../errors/index.js';
import type { AuthzRequest } from './authz-request.js';
import {
  type CedarRuntimeRebuild,
  cedarRuntimeGeneration,
  onCedarRuntimeRebuild,
  type StatefulAuthorizationCall,
} from './cedar-runtime.js';
import { PolicyEngine } from './policy-engine.js';

// Faults are caused for real: the raw Cedar module (the very instance the
// engine uses, from Node's module cache) is handed a policy far beyond the
// bounds, which overflows its stack and leaves it trapped. `trapWhen` lets a
// test do that just before chosen decisions, as if the decision itself had
// trapped; everything else passes through to the real runtime.
const control = vi.hoisted(() => ({ trapWhen: (_call: unknown) => false }));

vi.mock('./cedar-runtime.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('./cedar-runtime.js')>();
  return {
    ...real,
    statefulIsAuthorized: (call: StatefulAuthorizationCall) => {
      if (control.trapWhen(call)) trapRawRuntime();
      return real.statefulIsAuthorized(call);
    },
  };
});

const MARKER = 'fake-policy-marker-7f3a';
const DEEP = `permit(principal, action, resource) when { ${'('.repeat(400)}"${MARKER}" == ""${')'.repeat(400)} };`;

/** Traps the Cedar instance currently loaded, outside custos's guard. */
function trapRawRuntime(): void {
  const raw = createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as {
    policySetTextToParts(text: string): unknown;
  };
  try {
    raw.policySetTextToParts(DEEP);
  } catch {
    // The trap itself.
  }
  // The module is now unusable: even a trivial call fails.
  try {
    raw.policySetTextToParts('permit(principal, action, resource);');
  } catch {
    return;
  }
  throw new Error('expected the raw Cedar runtime to be trapped');
}

const P = (p: string) => `Custos::Path::"${p}"`;
const ask = (id: string, policies: string[], path: string): AuthzRequest => ({
  principal: { type: 'Token', id, attrs: { display_name: 'ci' } },
  policies,
  action: 'read',
  path,
});

function errorOf(fn: () => unknown): CustosError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CustosError);
    return e as CustosError;
  }
  throw new Error('expected a CustosError');
}

const rebuilds: CedarRuntimeRebuild[] = [];
const stopListening = onCedarRuntimeRebuild((e) => rebuilds.push(e));

afterEach(() => {
  control.trapWhen = () => false;
  rebuilds.length = 0;
});
afterAll(stopListening);

describe('defect #6: one deep policy broke all authorisation until restart', () => {
  it('a deeply nested policy is refused, and the engine keeps accepting policies and deciding', () => {
    const engine = new PolicyEngine({ maxDecisionsPerSet: 0 });
    engine.set('team', `permit(principal, action, resource in ${P('kv/team/')});`);
    expect(engine.authorize(ask('t1', ['team'], 'kv/team/a')).allowed).toBe(true);

    // Before the fix: the first trapped the parser at write, the second
    // validated and trapped the evaluator on first use; either way every
    // later write and uncached decision failed.
    const deep = [
      DEEP,
      `permit(principal, action, resource) when { ${Array.from({ length: 400 }, () => 'context.depth == 0').join(' && ')} };`,
      `permit(principal, action, resource) when { ${'{a: '.repeat(300)}1${'}'.repeat(300)} == {a: 1} };`,
    ];
    for (const text of deep) {
      expect(errorOf(() => engine.set('deep', text)).code).toBe('CUSTOS_ERR_INVALID_POLICY');
      expect(engine.has('deep')).toBe(false);
      expect(engine.authorize(ask('t1', ['team', 'deep'], 'kv/team/b')).allowed).toBe(true);
    }
    engine.set('other', `permit(principal, action, resource in ${P('kv/other/')});`);
    expect(engine.authorize(ask('t2', ['other'], 'kv/other/c')).allowed).toBe(true);
    expect(engine.authorize(ask('t2', ['other'], 'kv/team/c')).allowed).toBe(false);
    // The bounds kept it from Cedar: nothing trapped, nothing was rebuilt.
    expect(rebuilds).toEqual([]);
  });
});

describe('Cedar runtime faults', () => {
  it('a policy write on which Cedar traps is refused, the runtime is rebuilt, and writes and decisions work after', () => {
    // Bounds raised past what Cedar survives, to make it trap at write.
    const engine = new PolicyEngine({ limits: { maxNesting: 10_000, maxDepth: 100_000 } });
    const before = cedarRuntimeGeneration();
    const e = errorOf(() => engine.set('deep', DEEP));
    expect(e.code).toBe('CUSTOS_ERR_INVALID_POLICY');
    expect(e.detail).toBe('the policy engine failed on this policy; simplify it');
    expect(cedarRuntimeGeneration()).toBe(before + 1);
    expect(rebuilds).toEqual([expect.objectContaining({ operation: 'validate', generation: before + 1 })]);
    expect(rebuilds[0]?.error).toMatch(/^(RuntimeError|RangeError)$/);

    engine.set('ok', `permit(principal, action, resource in ${P('kv/ok/')});`);
    expect(engine.authorize(ask('t1', ['ok'], 'kv/ok/a')).allowed).toBe(true);
  });

  it('logs a rebuild without the policy text', () => {
    const engine = new PolicyEngine({ limits: { maxNesting: 10_000, maxDepth: 100_000 } });
    errorOf(() => engine.set('deep', DEEP));
    expect(rebuilds).toHaveLength(1);
    expect(JSON.stringify(rebuilds)).not.toContain(MARKER);
    expect(Object.keys(rebuilds[0] ?? {}).sort()).toEqual(['error', 'generation', 'message', 'operation']);
  });

  it('a runtime trapped outside the guard is rebuilt by the next decision, which is still answered, and sets are preparsed again', () => {
    const engine = new PolicyEngine({ maxDecisionsPerSet: 0 });
    engine.set('p', `permit(principal, action, resource in ${P('kv/p/')});`);
    engine.set('f', `forbid(principal, action, resource in ${P('kv/p/secret/')});`);
    expect(engine.authorize(ask('t1', ['p', 'f'], 'kv/p/a')).allowed).toBe(true);
    const { preparses } = engine.stats();

    trapRawRuntime();
    const before = cedarRuntimeGeneration();
    expect(engine.authorize(ask('t1', ['p', 'f'], 'kv/p/b')).allowed).toBe(true);
    expect(cedarRuntimeGeneration()).toBe(before + 1);
    expect(rebuilds).toEqual([expect.objectContaining({ operation: 'statefulIsAuthorized' })]);
    // The engine's set lived in the old runtime: it was preparsed again, once.
    expect(engine.stats().preparses).toBe(preparses + 1);
    expect(engine.stats().faults).toBe(0);
    expect(engine.authorize(ask('t1', ['p', 'f'], 'kv/p/secret/x')).allowed).toBe(false);
    expect(engine.authorize(ask('t1', ['p', 'f'], 'kv/p/c')).allowed).toBe(true);
  });

  it('another engine in the process re-preparses its sets after a rebuild it did not cause', () => {
    const one = new PolicyEngine({ maxDecisionsPerSet: 0 });
    const two = new PolicyEngine({ limits: { maxNesting: 10_000, maxDepth: 100_000 } });
    one.set('p', `permit(principal, action, resource in ${P('kv/one/')});`);
    expect(one.authorize(ask('t1', ['p'], 'kv/one/a')).allowed).toBe(true);
    errorOf(() => two.set('deep', DEEP));
    expect(one.authorize(ask('t1', ['p'], 'kv/one/b')).allowed).toBe(true);
    expect(one.authorize(ask('t1', ['p'], 'kv/two/b')).allowed).toBe(false);
  });

  it('a decision on which Cedar traps every time is refused with a code, never allowed; its set is then refused without calling Cedar until a policy changes', () => {
    const engine = new PolicyEngine({ maxDecisionsPerSet: 0 });
    engine.set('p', `permit(principal, action, resource in ${P('kv/p/')});`);
    engine.set('q', `permit(principal, action, resource in ${P('kv/q/')});`);
    control.trapWhen = (call) => (call as StatefulAuthorizationCall).principal.id === 'bad';
    const before = cedarRuntimeGeneration();

    const e = errorOf(() => engine.authorize(ask('bad', ['p'], 'kv/p/a')));
    expect(e.code).toBe('CUSTOS_ERR_POLICY_ENGINE_FAULT');
    expect(e.status).toBe(503);
    // Tried on the rebuilt runtime once more, then given up.
    expect(cedarRuntimeGeneration()).toBe(before + 2);
    expect(engine.stats().faults).toBe(1);

    // The same set is no longer handed to Cedar: refused at once, no rebuild.
    control.trapWhen = () => false;
    expect(errorOf(() => engine.authorize(ask('other', ['p'], 'kv/p/b'))).code).toBe('CUSTOS_ERR_POLICY_ENGINE_FAULT');
    expect(cedarRuntimeGeneration()).toBe(before + 2);
    expect(engine.stats().faults).toBe(2);

    // Other sets are decided as usual.
    expect(engine.authorize(ask('other', ['q'], 'kv/q/a')).allowed).toBe(true);
    expect(engine.authorize(ask('other', ['p'], 'kv/q/a')).allowed).toBe(false);

    // A policy change lifts it.
    engine.set('p', `permit(principal, action, resource in ${P('kv/p/')});`);
    expect(engine.authorize(ask('other', ['p'], 'kv/p/b')).allowed).toBe(true);
  });

  it('a preparse on which Cedar traps is refused the same way', () => {
    const engine = new PolicyEngine();
    engine.set('p', `permit(principal, action, resource in ${P('kv/p/')});`);
    trapRawRuntime();
    // The first preparse meets the trapped runtime, the retry succeeds.
    expect(engine.authorize(ask('t1', ['p'], 'kv/p/a')).allowed).toBe(true);
    expect(rebuilds).toEqual([expect.objectContaining({ operation: 'preparsePolicySet' })]);
  });
});

describe('policies stored before a bound they exceed', () => {
  it('deny everything to the principals holding them, and nothing to others, until replaced', () => {
    const engine = new PolicyEngine();
    engine.set('good', `permit(principal, action, resource in ${P('kv/a/')});`);
    engine.setInvalid('old', DEEP);
    expect(engine.get('old')).toBe(DEEP);
    expect(engine.authorize(ask('t1', ['good', 'old'], 'kv/a/x'))).toEqual({
      allowed: false,
      reasons: [],
      errors: ['old'],
    });
    expect(engine.authorize(ask('t1', ['good'], 'kv/a/x')).allowed).toBe(true);
    engine.set('old', `permit(principal, action, resource in ${P('kv/b/')});`);
    expect(engine.authorize(ask('t1', ['good', 'old'], 'kv/a/x')).allowed).toBe(true);
    engine.setInvalid('old', DEEP);
    expect(engine.remove('old')).toBe(true);
    expect(engine.authorize(ask('t1', ['good', 'old'], 'kv/a/x')).allowed).toBe(true);
  });
});
