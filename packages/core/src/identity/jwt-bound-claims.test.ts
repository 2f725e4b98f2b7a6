import { describe, expect, it } from 'vitest';
import { matchesBinding } from './jwt-bound-claims.js';

const k8s = {
  sub: 'system:serviceaccount:agents:enricher',
  groups: ['system:serviceaccounts', 'system:serviceaccounts:agents'],
  'kubernetes.io': { namespace: 'agents', serviceaccount: { name: 'enricher' } },
  'a/b': 'slash',
  count: 1,
  flag: true,
};

describe('matchesBinding', () => {
  it('accepts an empty binding', () => {
    expect(matchesBinding(k8s, {})).toBe(true);
  });

  it('compares the subject exactly, or any of a list', () => {
    expect(matchesBinding(k8s, { subject: 'system:serviceaccount:agents:enricher' })).toBe(true);
    expect(matchesBinding(k8s, { subject: 'system:serviceaccount:agents:enrich' })).toBe(false);
    expect(matchesBinding(k8s, { subject: ['x', 'system:serviceaccount:agents:enricher'] })).toBe(true);
  });

  it('requires every bound claim to match', () => {
    expect(matchesBinding(k8s, { claims: { sub: k8s.sub, '/kubernetes.io/namespace': 'agents' } })).toBe(true);
    expect(matchesBinding(k8s, { claims: { sub: k8s.sub, '/kubernetes.io/namespace': 'default' } })).toBe(false);
    expect(matchesBinding(k8s, { claims: { missing: 'x' } })).toBe(false);
  });

  it('resolves RFC 6901 pointers, including escaped "/"', () => {
    expect(matchesBinding(k8s, { claims: { '/kubernetes.io/serviceaccount/name': 'enricher' } })).toBe(true);
    expect(matchesBinding(k8s, { claims: { '/a~1b': 'slash' } })).toBe(true);
    expect(matchesBinding(k8s, { claims: { '/kubernetes.io/nope/name': 'enricher' } })).toBe(false);
  });

  it('matches array-valued claims when any member matches', () => {
    expect(matchesBinding(k8s, { claims: { groups: 'system:serviceaccounts:agents' } })).toBe(true);
    expect(matchesBinding(k8s, { claims: { groups: ['nope', 'system:serviceaccounts'] } })).toBe(true);
    expect(matchesBinding(k8s, { claims: { groups: 'system:masters' } })).toBe(false);
  });

  it('never coerces numbers, booleans or objects to strings', () => {
    expect(matchesBinding(k8s, { claims: { count: '1' } })).toBe(false);
    expect(matchesBinding(k8s, { claims: { flag: 'true' } })).toBe(false);
    expect(matchesBinding(k8s, { claims: { 'kubernetes.io': '[object Object]' } })).toBe(false);
  });

  it('does not resolve inherited properties', () => {
    expect(matchesBinding(k8s, { claims: { constructor: 'function Object() { [native code] }' } })).toBe(false);
    expect(matchesBinding(k8s, { claims: { '/__proto__/x': 'y' } })).toBe(false);
  });

  it('treats a trailing "*" literally unless glob matching is asked for', () => {
    const gh = { sub: 'repo:acme/payments:ref:refs/heads/main' };
    expect(matchesBinding(gh, { subject: 'repo:acme/payments:*' })).toBe(false);
    expect(matchesBinding(gh, { subject: 'repo:acme/payments:*', matching: 'glob' })).toBe(true);
    expect(matchesBinding(gh, { subject: 'repo:acme/other:*', matching: 'glob' })).toBe(false);
    // Only a trailing star is special.
    expect(matchesBinding(gh, { subject: 'repo:*/payments:ref:refs/heads/main', matching: 'glob' })).toBe(false);
    expect(matchesBinding({ sub: 'a*b' }, { subject: 'a*b', matching: 'glob' })).toBe(true);
  });
});
