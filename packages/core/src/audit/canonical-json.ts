/**
 * Canonical JSON for audit events, so a hash computed on one machine is the
 * same on any other. The rules are those of RFC 8785 (JCS) for the values an
 * audit event can hold:
 *
 * - No whitespace anywhere.
 * - Object members sorted by key, comparing keys as sequences of UTF-16 code
 *   units (JavaScript's default string order, which is what JCS specifies).
 *   Members whose value is `undefined` are omitted (they are "absent").
 * - Strings serialised as ECMAScript `JSON.stringify` does: `"`, `\` and
 *   U+0000–U+001F escaped (`\b \t \n \f \r` short forms, others `\u00xx` in
 *   lower-case hex), everything else as UTF-8. Strings holding a lone
 *   surrogate are rejected (they have no UTF-8 form).
 * - Numbers serialised as ECMAScript `Number.prototype.toString` does (the
 *   shortest round-tripping form, `-0` as `0`); `NaN` and `±Infinity` are
 *   rejected.
 * - `true`, `false`, `null` literally; arrays keep their order.
 * - Anything else (`undefined` in an array, functions, symbols, bigints,
 *   class instances other than plain objects and arrays) is rejected.
 *
 * The result is deterministic and idempotent: canonicalising the parse of a
 * canonical string yields the same string.
 */

/** A JSON value as audit events carry it. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** Thrown for a value that has no canonical JSON form. A programming error, not an input error. */
export class CanonicalJsonError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = 'CanonicalJsonError';
  }
}

/** True when `s` has no lone surrogate (ES2024 `String#isWellFormed`, native in every Node.js custos supports). */
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/**
 * The canonical JSON text of `value` (see the module comment for the rules).
 *
 * @example
 * canonicalJson({ b: 1, a: [true, null, 'x'] }) // '{"a":[true,null,"x"],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  return write(value, 0);
}

const MAX_DEPTH = 64;

function write(value: unknown, depth: number): string {
  if (depth > MAX_DEPTH) throw new CanonicalJsonError('value is nested too deeply');
  switch (typeof value) {
    case 'string':
      return canonicalString(value);
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError('non-finite number');
      // Number#toString is the JCS number form; String(-0) is already "0".
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          if (item === undefined) throw new CanonicalJsonError('undefined in an array');
          out += (i > 0 ? ',' : '') + write(item, depth + 1);
        }
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalJsonError('only plain objects and arrays can be canonicalised');
      }
      const record = value as Record<string, unknown>;
      // Default sort compares UTF-16 code units, exactly the JCS member order.
      const keys = Object.keys(record).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const member = record[key];
        if (member === undefined) continue;
        out += `${first ? '' : ','}${canonicalString(key)}:${write(member, depth + 1)}`;
        first = false;
      }
      return `${out}}`;
    }
    default:
      throw new CanonicalJsonError(`a ${typeof value} has no JSON form`);
  }
}

function canonicalString(s: string): string {
  if (!isWellFormed(s)) throw new CanonicalJsonError('string holds a lone surrogate');
  // Since ES2019 JSON.stringify escapes exactly as JCS requires for strings
  // without lone surrogates (those were rejected above).
  return JSON.stringify(s);
}
