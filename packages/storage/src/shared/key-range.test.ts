import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareUtf8, keyRange, prefixUpperBound } from './key-range.js';

describe('prefixUpperBound', () => {
  it('increments the last code point, carrying past U+10FFFF and skipping surrogates', () => {
    expect(prefixUpperBound('')).toBeUndefined();
    expect(prefixUpperBound('ab')).toBe('ac');
    expect(prefixUpperBound('a\u{10FFFF}')).toBe('b');
    expect(prefixUpperBound('\u{10FFFF}\u{10FFFF}')).toBeUndefined();
    expect(prefixUpperBound('\u{D7FF}')).toBe('\u{E000}');
    expect(prefixUpperBound('\u{1F600}')).toBe('\u{1F601}');
    expect(prefixUpperBound('\uFFFF')).toBe('\u{10000}');
  });

  it('selects exactly the keys that start with the prefix, in UTF-8 byte order', () => {
    // Small alphabet with multi-byte and edge code points, so prefixes collide often.
    const char = fc.constantFrom('a', 'b', '%', '_', 'é', '\u{D7FF}', '\u{E000}', '\uFFFF', '\u{10000}', '\u{10FFFF}');
    const str = fc.array(char, { maxLength: 4 }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(str, str, str, (prefix, key, after) => {
        const r = keyRange(prefix, after);
        const aboveLower = r.lowerInclusive ? compareUtf8(key, r.lower) >= 0 : compareUtf8(key, r.lower) > 0;
        const belowUpper = r.upper === undefined || compareUtf8(key, r.upper) < 0;
        const expected = key.startsWith(prefix) && compareUtf8(key, after) > 0;
        expect(aboveLower && belowUpper).toBe(expected);
      }),
      { numRuns: 5000 },
    );
  });
});
