import { describe, expect, it } from 'vitest';
import { sealJson } from '../common/cipher.js';
import { PolicyEngine } from '../policy/index.js';
import { taskKeysFixture } from '../task-tokens/test-support/task-keys-fixture.js';
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
