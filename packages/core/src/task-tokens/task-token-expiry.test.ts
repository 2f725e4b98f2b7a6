import { describe, expect, it } from 'vitest';
import { CustosError } from '../errors/index.js';
import { clampExpiry } from './task-token-expiry.js';

const NOW = Date.UTC(2030, 0, 1, 12, 0, 0, 250);
const nowSec = Math.floor(NOW / 1000);
const MIN = 60_000;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(CustosError);
    return (e as CustosError).code;
  }
}

describe('clampExpiry', () => {
  it('gives a root task what it asks within the role max', () => {
    expect(clampExpiry({ requestedTtlMs: 10 * MIN, roleMaxTtlMs: 15 * MIN, now: NOW })).toEqual({ exp: nowSec + 600 });
    expect(clampExpiry({ requestedTtlMs: 15 * MIN, roleMaxTtlMs: 15 * MIN, now: NOW })).toEqual({ exp: nowSec + 900 });
    expect(clampExpiry({ roleMaxTtlMs: 15 * MIN, now: NOW })).toEqual({ exp: nowSec + 900 });
  });

  it('refuses more than the role max, not narrows it', () => {
    expect(code(() => clampExpiry({ requestedTtlMs: 15 * MIN + 1, roleMaxTtlMs: 15 * MIN, now: NOW }))).toBe(
      'CUSTOS_ERR_INVALID_TTL',
    );
  });

  it('refuses a child TTL that outlives the parent, not narrows it', () => {
    const parentExp = nowSec + 300;
    const err = code(() => clampExpiry({ requestedTtlMs: 10 * MIN, roleMaxTtlMs: 15 * MIN, parentExp, now: NOW }));
    expect(err).toBe('CUSTOS_ERR_TTL_EXCEEDS_PARENT');
    // Exactly the parent's remaining lifetime is allowed; exp never passes the parent's.
    const remaining = parentExp * 1000 - NOW;
    expect(clampExpiry({ requestedTtlMs: remaining, roleMaxTtlMs: 15 * MIN, parentExp, now: NOW }).exp).toBe(parentExp);
    expect(
      code(() => clampExpiry({ requestedTtlMs: remaining + 1, roleMaxTtlMs: 15 * MIN, parentExp, now: NOW })),
    ).toBe('CUSTOS_ERR_TTL_EXCEEDS_PARENT');
    // Without a request: the most both allow.
    expect(clampExpiry({ roleMaxTtlMs: 15 * MIN, parentExp, now: NOW }).exp).toBe(parentExp);
    expect(clampExpiry({ roleMaxTtlMs: MIN, parentExp, now: NOW }).exp).toBe(nowSec + 60);
  });

  it('refuses a child of an expired (or nearly expired) parent', () => {
    expect(code(() => clampExpiry({ roleMaxTtlMs: MIN, parentExp: nowSec, now: NOW }))).toBe(
      'CUSTOS_ERR_TTL_EXCEEDS_PARENT',
    );
    expect(
      code(() => clampExpiry({ requestedTtlMs: 1_000, roleMaxTtlMs: MIN, parentExp: nowSec - 10, now: NOW })),
    ).toBe('CUSTOS_ERR_TTL_EXCEEDS_PARENT');
  });

  it('refuses TTLs that are not positive whole milliseconds of at least a second', () => {
    for (const requestedTtlMs of [0, -1, 999, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(
        code(() => clampExpiry({ requestedTtlMs, roleMaxTtlMs: MIN, now: NOW })),
        String(requestedTtlMs),
      ).toBe('CUSTOS_ERR_INVALID_TTL');
    }
    expect(code(() => clampExpiry({ roleMaxTtlMs: 0, now: NOW }))).toBe('CUSTOS_ERR_INVALID_TTL');
    expect(code(() => clampExpiry({ roleMaxTtlMs: MIN, parentExp: 1.5, now: NOW }))).toBe('CUSTOS_ERR_INVALID_TTL');
  });
});
