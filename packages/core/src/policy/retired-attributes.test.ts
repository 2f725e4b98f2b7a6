import { describe, expect, it } from 'vitest';
import { CustosError } from '../errors/index.js';
import { PolicyEngine } from './policy-engine.js';

const refusal = (text: string) => {
  try {
    new PolicyEngine().validate('p', text);
  } catch (error) {
    return error as CustosError;
  }
  return undefined;
};

describe('a retired principal attribute (display_name)', () => {
  it('is refused whether read or tested with has, with a message that says what to use instead', () => {
    for (const text of [
      'permit(principal is Custos::Token, action, resource) when { principal.display_name == "ci" };',
      'permit(principal, action, resource) when { principal.display_name == "ci" };',
      // Validates in Cedar (always false), which would silently disarm this forbid.
      'permit(principal, action, resource);\nforbid(principal, action, resource) when { principal has display_name && principal.display_name == "intern" };',
    ]) {
      const error = refusal(text);
      expect(error, text).toBeInstanceOf(CustosError);
      expect(error?.code).toBe('CUSTOS_ERR_INVALID_POLICY');
      expect(error?.message).toMatch(/display_name is not a policy attribute/);
      expect(error?.message).toMatch(/Custos::Token::"acc_…"/);
    }
  });

  it('is not confused with the word in a path or a string', () => {
    expect(
      refusal(
        'permit(principal, action, resource == Custos::Path::"kv/display_name") when { context.now.date != "display_name" };',
      ),
    ).toBeUndefined();
  });

  it('a token is still named by its accessor', () => {
    const engine = new PolicyEngine();
    engine.set('one', 'permit(principal == Custos::Token::"acc_one", action == Custos::Action::"read", resource);');
    const ask = (id: string) =>
      engine.authorize({ principal: { type: 'Token', id }, policies: ['one'], action: 'read', path: 'kv/x' }).allowed;
    expect(ask('acc_one')).toBe(true);
    expect(ask('acc_two')).toBe(false);
  });
});
