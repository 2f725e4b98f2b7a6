/**
 * A key range for prefix listing with keyset pagination, in UTF-8 byte order
 * (the order both adapters use: SQLite BINARY, PostgreSQL `COLLATE "C"`).
 */
export interface KeyRange {
  /** The lowest key that may match. */
  readonly lower: string;
  /** True when `lower` itself may match (`>=`), false for `>`. */
  readonly lowerInclusive: boolean;
  /** Keys must be strictly below this; undefined when the range is unbounded above. */
  readonly upper: string | undefined;
}

const MAX_CODE_POINT = 0x10ffff;

/**
 * The smallest well-formed string greater than every string that starts with
 * `prefix`, or undefined when there is none (empty prefix, or a prefix of only
 * U+10FFFF). UTF-8 byte order equals code point order, so incrementing the last
 * code point gives an exact bound: `key >= prefix AND key < upper` selects
 * exactly the keys with that prefix, with no LIKE (so `%` and `_` are plain
 * characters) and as an index range scan.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const codePoints = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (codePoints.length > 0) {
    const last = codePoints.pop()!;
    if (last === MAX_CODE_POINT) continue; // carry into the previous code point
    // Surrogates are not valid in UTF-8: the next code point after U+D7FF is U+E000.
    const next = last === 0xd7ff ? 0xe000 : last + 1;
    codePoints.push(next);
    return String.fromCodePoint(...codePoints);
  }
  return undefined;
}

/** Compares two strings by their UTF-8 bytes, as the databases do. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The range for `list`/`scan`: keys starting with `prefix`, strictly after `after` if given. */
export function keyRange(prefix: string, after: string | undefined): KeyRange {
  const upper = prefixUpperBound(prefix);
  if (after !== undefined && compareUtf8(after, prefix) >= 0) {
    return { lower: after, lowerInclusive: false, upper };
  }
  return { lower: prefix, lowerInclusive: true, upper };
}
