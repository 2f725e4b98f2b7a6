import { describe, expect, it } from 'vitest';
import { type Cipher, sealJson } from '../common/cipher.js';
import { PolicyEngine } from '../policy/index.js';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { PolicyService, type StoredPolicy } from './policy-service.js';

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

    await policies.write('old', `permit(principal, action, resource in ${P('kv/b/')});`, 'operator');
    expect(engine.authorize(ask(['good', 'old'], 'kv/a/x')).allowed).toBe(true);
    expect(engine.authorize(ask(['good', 'old'], 'kv/b/x')).allowed).toBe(true);
  });
});
