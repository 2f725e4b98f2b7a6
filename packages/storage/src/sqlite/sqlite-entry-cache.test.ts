import { describe, expect, it } from 'vitest';
import { SqliteEntryCache } from './sqlite-entry-cache.js';

const entry = (key: string, size = 100) => ({ key, value: new Uint8Array(size).fill(7), expiresAt: null });

describe('SqliteEntryCache', () => {
  it('answers hits with copies, and remembers absence', () => {
    const cache = new SqliteEntryCache(10_000);
    expect(cache.get('ns', 'k')).toBeUndefined();
    cache.set('ns', 'k', entry('k', 3));
    cache.set('ns', 'gone', undefined);
    const hit = cache.get('ns', 'k')!;
    hit.value.fill(0);
    expect(cache.get('ns', 'k')?.value).toEqual(new Uint8Array([7, 7, 7]));
    expect(cache.get('ns', 'gone')).toBeNull();
    cache.forget('ns', 'k');
    expect(cache.get('ns', 'k')).toBeUndefined();
  });

  it('keeps rows in use and evicts the unused ones when full', () => {
    // Room for about four 100-byte rows with their overhead.
    const cache = new SqliteEntryCache(4 * 290);
    for (const k of ['a', 'b', 'c', 'd']) cache.set('ns', k, entry(k));
    cache.get('ns', 'a'); // a is hot
    cache.set('ns', 'e', entry('e'));
    cache.set('ns', 'f', entry('f'));
    expect(cache.get('ns', 'a')).toBeDefined();
    expect(cache.get('ns', 'f')).toBeDefined();
    const kept = ['b', 'c', 'd', 'e'].filter((k) => cache.get('ns', k) !== undefined);
    expect(kept.length).toBeLessThan(4);
  });

  it('never grows past its budget, whatever the pattern of hits', () => {
    const cache = new SqliteEntryCache(5_000);
    for (let i = 0; i < 2_000; i++) {
      cache.set('ns', `k${i}`, entry(`k${i}`, i % 300));
      for (let j = 0; j < 5; j++) cache.get('ns', `k${(i * 7 + j) % (i + 1)}`);
      expect(cache.size.bytes).toBeLessThanOrEqual(5_000);
      // Full, not emptied by the sweep: rows cost at most 160 + 2 × 10 + 299 bytes each.
      if (i > 100) expect(cache.size.rows).toBeGreaterThanOrEqual(Math.floor(5_000 / 479) - 1);
    }
  });

  it('skips values too large to be worth caching', () => {
    const cache = new SqliteEntryCache(10_000_000);
    cache.set('ns', 'big', entry('big', 65 * 1024));
    expect(cache.get('ns', 'big')).toBeUndefined();
  });
});
