import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CanonicalJsonError, canonicalJson } from './canonical-json.js';

describe('canonicalJson', () => {
  it('sorts keys and leaves no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 2, 1], c: null }, ' ': true })).toBe(
      '{" ":true,"a":{"c":null,"d":[3,2,1]},"b":1}',
    );
  });

  it('orders keys by UTF-16 code units as RFC 8785 does', () => {
    // RFC 8785 §3.2.3 example keys: "\u20ac" (€), "\r", "\ufb33", "1", "\ud83d\ude00", "\u0080", "\u00f6".
    const value = {
      '\u20ac': 'Euro',
      '\r': 'CR',
      '\ufb33': 'Hebrew',
      '1': 'One',
      '\ud83d\ude00': 'Emoji',
      '\u0080': 'Control',
      '\u00f6': 'Latin',
    };
    // Compare the text: Object.keys would list the integer-like key "1" first whatever the order.
    expect(canonicalJson(value)).toBe(
      '{"\\r":"CR","1":"One","\u0080":"Control","\u00f6":"Latin","\u20ac":"Euro","\ud83d\ude00":"Emoji","\ufb33":"Hebrew"}',
    );
  });

  it('escapes strings as JCS does', () => {
    expect(canonicalJson('a"b\\c\n\t\u0001\u001f\u007f é €')).toBe('"a\\"b\\\\c\\n\\t\\u0001\\u001f\u007f é €"');
    expect(canonicalJson('</script>')).toBe('"</script>"');
  });

  it('serialises numbers in the shortest round-trip form', () => {
    expect(canonicalJson([0, -0, 1, -1.5, 1e21, 1e-7, 333333333.3333333, 2 ** 53])).toBe(
      '[0,0,1,-1.5,1e+21,1e-7,333333333.3333333,9007199254740992]',
    );
  });

  it('omits undefined members and keeps null', () => {
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
  });

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a bigint', 1n],
    ['a function', () => 1],
    ['undefined in an array', [undefined]],
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['a lone surrogate', '\ud800x'],
    ['a lone surrogate key', { '\udc00': 1 }],
  ])('rejects %s', (_name, value) => {
    expect(() => canonicalJson(value)).toThrow(CanonicalJsonError);
  });

  it('is idempotent through JSON.parse for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const once = canonicalJson(value);
        expect(canonicalJson(JSON.parse(once))).toBe(once);
      }),
    );
  });

  it('does not depend on key insertion order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (dict) => {
        const reversed = Object.fromEntries(Object.entries(dict).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(dict));
      }),
    );
  });
});
