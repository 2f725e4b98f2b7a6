import { describe, expect, it } from 'vitest';
import {
  agentLabels,
  assertGrantable,
  childTaskLabels,
  grantableLabelKeys,
  labelGrantRefusal,
  MAX_LABELS,
  operatorLabels,
  rootTaskLabels,
  validateLabels,
} from './task-labels.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

describe('task labels: who may set which', () => {
  it('an agent sets only agent.* labels, in any case of the prefix it is still the agent namespace', () => {
    expect(agentLabels({ 'agent.step': 'fetch' })).toEqual({ 'agent.step': 'fetch' });
    expect(code(() => agentLabels({ team: 'search' }))).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    expect(code(() => agentLabels({ agent: 'x' }))).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    expect(code(() => agentLabels({ 'agentx.y': 'z' }))).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    expect(code(() => operatorLabels({ 'Agent.step': 'x' }))).toBe('CUSTOS_ERR_VALIDATION');
    expect(operatorLabels({ team: 'search' })).toEqual({ team: 'search' });
  });

  it('keys, values and counts are bounded', () => {
    expect(code(() => validateLabels({ 'a=b': 'c' }))).toBe('CUSTOS_ERR_VALIDATION');
    expect(code(() => validateLabels({ a: 'x'.repeat(257) }))).toBe('CUSTOS_ERR_VALIDATION');
    expect(code(() => validateLabels({ a: 1 }))).toBe('CUSTOS_ERR_VALIDATION');
    expect(code(() => validateLabels(['a']))).toBe('CUSTOS_ERR_VALIDATION');
    const many = Object.fromEntries(Array.from({ length: MAX_LABELS + 1 }, (_, i) => [`k${i}`, 'v']));
    expect(code(() => validateLabels(many))).toBe('CUSTOS_ERR_VALIDATION');
  });

  it('a root task: the role’s labels win over any other source', () => {
    expect(
      rootTaskLabels({ role: { team: 'search' }, granted: { team: 'ads', env: 'prod' }, agent: { 'agent.x': '1' } }),
    ).toEqual({ team: 'search', env: 'prod', 'agent.x': '1' });
  });

  it('labels granted below a role: only keys it lists as grantable, never against its own', () => {
    const role = { labels: { team: 'search' }, grantable_labels: ['env'] };
    expect(() => assertGrantable(role, { team: 'search', env: 'prod' })).not.toThrow();
    expect(code(() => assertGrantable(role, { team: 'ads' }))).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    expect(code(() => assertGrantable(role, { tier: 'gold' }))).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    expect(labelGrantRefusal(role, { tier: 'gold' })).toMatch(/does not let the label "tier" be granted/);
    // A role that lists none (every role from before the list existed) lets nothing be granted.
    expect(code(() => assertGrantable({ labels: {} }, { env: 'prod' }))).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    expect(code(() => assertGrantable({ labels: {}, grantable_labels: [] }, { env: 'prod' }))).toBe(
      'CUSTOS_ERR_LABEL_NOT_ALLOWED',
    );
    expect(labelGrantRefusal({ labels: {} }, {})).toBeUndefined();
  });

  it('grantable keys are operator label keys, each once', () => {
    expect(grantableLabelKeys(['team', 'env', 'team'])).toEqual(['env', 'team']);
    expect(grantableLabelKeys(undefined)).toEqual([]);
    expect(code(() => grantableLabelKeys(['agent.step']))).toBe('CUSTOS_ERR_VALIDATION');
    expect(code(() => grantableLabelKeys(['a=b']))).toBe('CUSTOS_ERR_VALIDATION');
    expect(code(() => grantableLabelKeys('team'))).toBe('CUSTOS_ERR_VALIDATION');
    expect(code(() => grantableLabelKeys(Array.from({ length: MAX_LABELS + 1 }, (_, i) => `k${i}`)))).toBe(
      'CUSTOS_ERR_VALIDATION',
    );
  });

  it('a child keeps every inherited label and may add only new agent labels', () => {
    const parent = { team: 'ads', 'agent.run': '7' };
    expect(childTaskLabels(parent, undefined)).toEqual(parent);
    expect(childTaskLabels(parent, { 'agent.step': 'x', 'agent.run': '7' })).toEqual({ ...parent, 'agent.step': 'x' });
    expect(code(() => childTaskLabels(parent, { team: 'search' }))).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    expect(code(() => childTaskLabels(parent, { team: 'ads' }))).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
    expect(code(() => childTaskLabels(parent, { 'agent.run': '8' }))).toBe('CUSTOS_ERR_LABEL_NOT_ALLOWED');
  });
});
