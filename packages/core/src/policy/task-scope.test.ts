import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CustosError } from '../errors/index.js';
import { POLICY_ACTIONS, type PolicyAction } from './policy-action.js';
import { formatScope, isScopeSubset, parseScope, type ScopeEntry, scopeAllows } from './task-scope.js';

function validationDetail(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CustosError);
    expect((e as CustosError).code).toBe('CUSTOS_ERR_VALIDATION');
    return (e as CustosError).detail;
  }
  throw new Error('expected a validation error');
}

describe('parseScope', () => {
  it('parses the example from the design', () => {
    expect(parseScope('read:kv/team/a/* list:kv/team/a/ issue:pg-main/reader')).toEqual([
      { action: 'read', path: 'kv/team/a/', prefix: true },
      { action: 'list', path: 'kv/team/a/', prefix: false },
      { action: 'issue', path: 'pg-main/reader', prefix: false },
    ]);
  });

  it('accepts any whitespace between entries and drops duplicates', () => {
    expect(parseScope('  read:kv/a\t\nread:kv/a   write:kv/b* ')).toEqual([
      { action: 'read', path: 'kv/a', prefix: false },
      { action: 'write', path: 'kv/b', prefix: true },
    ]);
  });

  it('accepts a bare * (everything for that action) and a partial last segment', () => {
    expect(parseScope('read:*')).toEqual([{ action: 'read', path: '', prefix: true }]);
    expect(parseScope('read:kv/a/sec*')).toEqual([{ action: 'read', path: 'kv/a/sec', prefix: true }]);
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['kv/a', 'ACTION:PATTERN'],
    ['reed:kv/a', 'unknown action'],
    ['READ:kv/a', 'unknown action'],
    ['read:', 'empty'],
    ['read:kv/*/x', 'only at the end'],
    ['read:kv/a**', 'only at the end'],
    ['read:*kv', 'only at the end'],
    ['read:/kv/a', 'malformed'],
    ['read:kv//a', 'malformed'],
    ['read:kv/../a', 'malformed'],
    ['read:kv/./a', 'malformed'],
    ['read:..', 'malformed'],
    ['read:kv/\u0001', 'malformed'],
    [`read:${'a'.repeat(1025)}`, 'too long'],
    [Array.from({ length: 65 }, (_, i) => `read:kv/${i}`).join(' '), 'more than 64'],
  ])('rejects %j', (text, detail) => {
    expect(validationDetail(() => parseScope(text))).toContain(detail);
  });
});

describe('scopeAllows', () => {
  const scope = parseScope('read:kv/team/a/* list:kv/team/a/ issue:pg-main/reader');

  it('matches prefixes with a trailing * and exact paths otherwise', () => {
    expect(scopeAllows(scope, 'read', 'kv/team/a/x')).toBe(true);
    expect(scopeAllows(scope, 'read', 'kv/team/a/deep/er')).toBe(true);
    expect(scopeAllows(scope, 'read', 'kv/team/a/')).toBe(true);
    expect(scopeAllows(scope, 'read', 'kv/team/ab')).toBe(false);
    expect(scopeAllows(scope, 'read', 'kv/team/b/x')).toBe(false);
    expect(scopeAllows(scope, 'list', 'kv/team/a/')).toBe(true);
    expect(scopeAllows(scope, 'list', 'kv/team/a/x')).toBe(false);
    expect(scopeAllows(scope, 'issue', 'pg-main/reader')).toBe(true);
    expect(scopeAllows(scope, 'issue', 'pg-main/reader2')).toBe(false);
  });

  it('never crosses actions', () => {
    expect(scopeAllows(scope, 'write', 'kv/team/a/x')).toBe(false);
    expect(scopeAllows(scope, 'delete', 'kv/team/a/x')).toBe(false);
    expect(scopeAllows(scope, 'read', 'pg-main/reader')).toBe(false);
  });
});

describe('isScopeSubset', () => {
  const s = parseScope;
  it.each([
    ['read:kv/a/b/*', 'read:kv/a/*', true],
    ['read:kv/a/x', 'read:kv/a/*', true],
    ['read:kv/a/', 'read:kv/a/*', true],
    ['read:kv/a/*', 'read:kv/a/*', true],
    ['read:kv/a/*', 'read:kv/a/b', false],
    ['read:kv/a/*', 'read:kv/a/', false],
    ['read:kv/a/*', 'read:kv/a/b/*', false],
    ['read:kv/ab', 'read:kv/a/*', false],
    ['write:kv/a/x', 'read:kv/a/*', false],
    ['read:kv/a/x list:kv/a/', 'read:kv/a/* list:kv/a/', true],
    ['read:kv/a/x list:kv/b/', 'read:kv/a/* list:kv/a/', false],
    ['read:kv/a/x', 'read:*', true],
    ['read:*', 'read:kv/*', false],
  ])('%s ⊆ %s is %s', (child, parent, expected) => {
    expect(isScopeSubset(s(child), s(parent))).toBe(expected);
  });
});

// Property tests over a tiny alphabet, so generated patterns overlap often.
const segment = fc.constantFrom('a', 'b', 'ab', 'c');
const pathArb = fc
  .tuple(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([segs, folder]) => segs.join('/') + (folder ? '/' : ''));
const actionArb = fc.constantFrom<PolicyAction>('read', 'list', 'write');
const entryArb: fc.Arbitrary<ScopeEntry> = fc
  .tuple(actionArb, fc.oneof(pathArb, fc.constant('')), fc.boolean())
  .filter(([, path, prefix]) => path !== '' || prefix)
  .map(([action, path, prefix]) => ({ action, path, prefix }));
const scopeArb = fc.array(entryArb, { minLength: 1, maxLength: 5 });

/** A narrower scope: some entries of `parent`, each extended or made exact. */
function narrowArb(parent: readonly ScopeEntry[]): fc.Arbitrary<ScopeEntry[]> {
  return fc
    .array(fc.tuple(fc.nat(parent.length - 1), fc.constantFrom('', 'a', 'b/', 'c/a'), fc.boolean()), {
      minLength: 1,
      maxLength: 4,
    })
    .map((picks) =>
      picks.map(([i, extra, keepPrefix]) => {
        const p = parent[i] as ScopeEntry;
        // An exact parent entry admits only itself.
        if (!p.prefix) return p;
        return { action: p.action, path: p.path + extra, prefix: keepPrefix };
      }),
    );
}

/** Paths near the scope's patterns, plus random ones. */
function probePaths(scopes: readonly (readonly ScopeEntry[])[]): fc.Arbitrary<string[]> {
  const near = scopes.flat().flatMap((e) => [e.path, `${e.path}a`, `${e.path}b/c`, e.path.slice(0, -1)]);
  return fc.array(pathArb, { maxLength: 10 }).map((random) => [...near, ...random]);
}

describe('scope properties', () => {
  it('subset is reflexive', () => {
    fc.assert(fc.property(scopeArb, (a) => isScopeSubset(a, a)));
  });

  it('a narrowed scope is a subset, and subset is transitive', () => {
    fc.assert(
      fc.property(
        scopeArb.chain((c) => narrowArb(c).chain((b) => narrowArb(b).map((a) => [a, b, c] as const))),
        ([a, b, c]) => {
          expect(isScopeSubset(b, c)).toBe(true);
          expect(isScopeSubset(a, b)).toBe(true);
          expect(isScopeSubset(a, c)).toBe(true);
        },
      ),
    );
  });

  it('transitivity holds on random triples too', () => {
    fc.assert(
      fc.property(scopeArb, scopeArb, scopeArb, (a, b, c) => {
        if (isScopeSubset(a, b) && isScopeSubset(b, c)) expect(isScopeSubset(a, c)).toBe(true);
      }),
    );
  });

  it('child ⊆ parent ⇒ whatever the child allows the parent allows', () => {
    const pairs = fc.oneof(
      fc.tuple(scopeArb, scopeArb),
      scopeArb.chain((p) => narrowArb(p).map((c) => [c, p] as [ScopeEntry[], ScopeEntry[]])),
    );
    fc.assert(
      fc.property(
        pairs.chain(([child, parent]) => probePaths([child, parent]).map((paths) => [child, parent, paths] as const)),
        actionArb,
        ([child, parent, paths], action) => {
          if (!isScopeSubset(child, parent)) return;
          for (const p of paths) {
            if (scopeAllows(child, action, p)) expect(scopeAllows(parent, action, p)).toBe(true);
          }
        },
      ),
    );
  });

  it('child ⊄ parent ⇒ some path the child allows is refused by the parent (the check is exact)', () => {
    fc.assert(
      fc.property(scopeArb, scopeArb, (child, parent) => {
        if (isScopeSubset(child, parent)) return;
        const witnessed = child.some((e) => {
          // `q9` is outside the alphabet, so no longer parent prefix matches it.
          const witness = e.prefix ? `${e.path}q9` : e.path;
          return scopeAllows([e], e.action, witness) && !scopeAllows(parent, e.action, witness);
        });
        expect(witnessed).toBe(true);
      }),
    );
  });

  it('formatScope and parseScope round-trip', () => {
    const nonEmptyEntry = entryArb.filter((e) => e.path.length > 0 || e.prefix);
    fc.assert(
      fc.property(fc.uniqueArray(nonEmptyEntry, { selector: (e) => formatScope([e]), minLength: 1 }), (scope) => {
        expect(parseScope(formatScope(scope))).toEqual(scope);
      }),
    );
  });

  it('every action the engine knows can appear in a scope', () => {
    for (const a of POLICY_ACTIONS) expect(parseScope(`${a}:x`)).toEqual([{ action: a, path: 'x', prefix: false }]);
  });
});
