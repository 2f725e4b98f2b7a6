import { describe, expect, it } from 'vitest';
import { type Cipher, sealJson } from '../common/cipher.js';
import { PolicyEngine } from '../policy/index.js';
import { taskKeysFixture } from '../task-tokens/test-support/task-keys-fixture.js';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { PolicyService, type StoredPolicy } from './policy-service.js';

describe('stored policies that no longer validate', () => {
  it('a policy on principal.display_name written by an earlier build loads as deny-all, without stopping the node', async () => {
    const { store, barrier } = await taskKeysFixture();
    const engine = new PolicyEngine();
    const policies = new PolicyService({ storage: { entries: store }, cipher: barrier, engine });
    await policies.write('read-all', 'permit(principal, action == Custos::Action::"read", resource);', 'test');
    // As an earlier build stored it: valid then, when tokens had display names in Cedar.
    const legacy: StoredPolicy = {
      name: 'interns',
      policy:
        'permit(principal, action == Custos::Action::"read", resource);\n' +
        'forbid(principal is Custos::Token, action, resource in Custos::Path::"kv/hr/") when { principal.display_name == "intern" };',
      updated_time: new Date().toISOString(),
      updated_by: 'token:acc_old',
    };
    await store.put('policy', 'interns', sealJson(barrier, 'policy', 'interns', legacy));
    await expect(policies.load()).resolves.toBe(2);
    const ask = (held: string[], path: string) =>
      engine.authorize({ principal: { type: 'Token', id: 'acc_x' }, policies: held, action: 'read', path }).allowed;
    // Its forbid cannot be evaluated any more, so holders get nothing at all.
    expect(ask(['interns'], 'kv/hr/salaries')).toBe(false);
    expect(ask(['interns', 'read-all'], 'kv/public/x')).toBe(false);
    expect(ask(['read-all'], 'kv/public/x')).toBe(true);
    const read = await policies.read('interns');
    expect(read.policy).toBe(legacy.policy);
    expect(read.load_error).toMatch(/display_name is not a policy attribute/);
    // A refresh does not reload it again; rewriting it fixes it.
    await expect(policies.load()).resolves.toBe(2);
    await policies.write('interns', 'permit(principal, action == Custos::Action::"read", resource);', 'test');
    expect(ask(['interns'], 'kv/hr/salaries')).toBe(true);
    expect((await policies.read('interns')).load_error).toBeUndefined();
  });
});

/** A pass-through cipher: these tests are about loading, not encryption (the barrier has its own tests). */
const plainCipher: Cipher = {
  sealed: false,
  encrypt: (_aad, plaintext) => plaintext.slice(),
  decrypt: (_aad, blob) => blob.slice(),
  decryptAsync: async (_aad, blob) => blob.slice(),
};

const P = (p: string) => `Custos::Path::"${p}"`;
const ask = (policies: string[], path: string) => ({
  principal: { type: 'Token' as const, id: 'tok-1' },
  policies,
  action: 'read' as const,
  path,
});

describe('PolicyService.load', () => {
  it('a stored policy beyond the current bounds does not stop the node from loading; its holders are denied until it is replaced', async () => {
    const entries = new MemoryEntryStore();
    // As an older version stored it: a `&&` chain far beyond today's bounds.
    const old: StoredPolicy = {
      name: 'old',
      policy: `permit(principal, action, resource) when { ${Array.from({ length: 400 }, () => 'context.depth == 0').join(' && ')} };`,
      updated_time: new Date().toISOString(),
      updated_by: 'operator',
    };
    await entries.put('policy', 'old', sealJson(plainCipher, 'policy', 'old', old));
    const engine = new PolicyEngine();
    const policies = new PolicyService({ storage: { entries }, cipher: plainCipher, engine });
    await policies.write('good', `permit(principal, action, resource in ${P('kv/a/')});`, 'operator');

    expect(await policies.load()).toBe(2);
    expect(engine.authorize(ask(['good'], 'kv/a/x')).allowed).toBe(true);
    expect(engine.authorize(ask(['good', 'old'], 'kv/a/x'))).toMatchObject({ allowed: false, errors: ['old'] });
    // It is still there to read and fix.
    expect((await policies.read('old')).policy).toBe(old.policy);
    expect((await policies.read('old')).load_error).toMatch(/.+/);

    await policies.write('old', `permit(principal, action, resource in ${P('kv/b/')});`, 'operator');
    expect(engine.authorize(ask(['good', 'old'], 'kv/a/x')).allowed).toBe(true);
    expect(engine.authorize(ask(['good', 'old'], 'kv/b/x')).allowed).toBe(true);
    expect((await policies.read('old')).load_error).toBeUndefined();
  });
});
