import { describe, expect, it } from 'vitest';
import { NodeHealth, sealedProblems } from '../src/node-health.js';

describe('NodeHealth', () => {
  it('reports an audit failure until the next success', () => {
    const health = new NodeHealth();
    expect(health.problems()).toEqual([]);
    health.auditFailed();
    expect(health.problems()).toEqual(['audit_unavailable']);
    health.auditSucceeded();
    expect(health.problems()).toEqual([]);
  });

  it('forgets an audit failure after the hold time, so a node with no traffic is tried again', () => {
    let now = 1_000;
    const health = new NodeHealth({ auditHoldMs: 15_000, now: () => now });
    health.auditFailed();
    now += 14_999;
    expect(health.problems()).toEqual(['audit_unavailable']);
    now += 1;
    expect(health.problems()).toEqual([]);
  });

  it('reports a log that cannot be written', () => {
    const log = { failing: true };
    const health = new NodeHealth({ log });
    expect(health.problems()).toEqual(['log_unwritable']);
    log.failing = false;
    expect(health.problems()).toEqual([]);
  });

  it('names a node that stays sealed because its audit chain failed its check, and no other sealed node', () => {
    expect(sealedProblems({ sealed: true, reason: 'CUSTOS_ERR_AUDIT_INTEGRITY' })).toEqual(['audit_integrity']);
    // Waiting for unseal keys is a state, not a problem; an unknown reason gives no word either.
    expect(sealedProblems({ sealed: true })).toEqual([]);
    expect(sealedProblems({ sealed: true, reason: 'CUSTOS_ERR_SOMETHING_ELSE' })).toEqual([]);
    expect(sealedProblems({ sealed: false, reason: 'CUSTOS_ERR_AUDIT_INTEGRITY' })).toEqual([]);
  });

  it('names a node that sealed itself because its HSM went away (a wrapped seal)', () => {
    for (const reason of [
      'CUSTOS_ERR_SEAL_UNAVAILABLE',
      'CUSTOS_ERR_HSM_TOKEN_NOT_FOUND',
      'CUSTOS_ERR_SEAL_ACCESS_DENIED',
    ]) {
      expect(sealedProblems({ sealed: true, reason })).toEqual(['seal_unavailable']);
    }
    expect(sealedProblems({ sealed: false, reason: 'CUSTOS_ERR_SEAL_UNAVAILABLE' })).toEqual([]);
  });
});
