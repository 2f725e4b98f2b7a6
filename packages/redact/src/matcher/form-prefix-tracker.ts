import { MAX_INDENT } from './line-junctions.js';

export interface PrefixTables {
  /** Range of forms starting with each ASCII character: lo at 2c, hi at 2c+1. */
  firstRange: Int32Array;
  /** Range of forms starting with each pair of ASCII characters (a, b): lo at 2(128a+b). */
  pairRange: Int32Array;
}

/** First index in [lo, hi) of `sorted` whose character at `depth` is ≥ c (a form ending before `depth` counts as −1). */
function lowerBound(sorted: readonly string[], lo: number, hi: number, depth: number, c: number): number {
  let l = lo;
  let h = hi;
  while (l < h) {
    const mid = (l + h) >>> 1;
    const f = sorted[mid]!;
    if ((f.length > depth ? f.charCodeAt(depth) : -1) < c) l = mid + 1;
    else h = mid;
  }
  return l;
}

export function prefixTables(sorted: readonly string[]): PrefixTables {
  const firstRange = new Int32Array(256);
  const pairRange = new Int32Array(2 * 128 * 128);
  for (let c = 0; c < 128; c++) {
    const lo = lowerBound(sorted, 0, sorted.length, 0, c);
    const hi = lowerBound(sorted, lo, sorted.length, 0, c + 1);
    firstRange[2 * c] = lo;
    firstRange[2 * c + 1] = hi;
    for (let d = 0; d < 128; d++) {
      const lo2 = lowerBound(sorted, lo, hi, 1, d);
      pairRange[2 * (128 * c + d)] = lo2;
      pairRange[2 * (128 * c + d) + 1] = lowerBound(sorted, lo2, hi, 1, d + 1);
    }
  }
  return { firstRange, pairRange };
}

/**
 * Follows, character by character, every position of a stream whose text so
 * far is a prefix of some registered form: each candidate is a range of the
 * sorted forms, narrowed by two binary searches per character. This is an
 * Aho-Corasick automaton computed lazily over the sorted array instead of
 * stored as a table (10,000 secrets would need millions of states).
 *
 * It reads the stream as the matcher reads text: line junctions are skipped,
 * so a candidate waits across a line break and its indent. A candidate is
 * dropped once it spans more than `maxSpan` characters, the most any match
 * can.
 */
export class FormPrefixTracker {
  private readonly sorted: readonly string[];
  private readonly maxSpan: number;
  private readonly firstRange: Int32Array;
  private readonly pairRange: Int32Array;
  /** Live candidates, in order of their start: start (absolute), characters matched, range [lo, hi). */
  private readonly starts: Float64Array;
  private readonly depths: Int32Array;
  private readonly los: Int32Array;
  private readonly his: Int32Array;
  private count = 0;
  /** The last character outside junctions and its position; −1 before the first. */
  private prevChar = -1;
  private prevAt = -1;
  /** Spaces or tabs that may still be a junction's indent. */
  private indentLeft = 0;

  constructor(sorted: readonly string[], tables: PrefixTables, maxSpan: number) {
    this.sorted = sorted;
    this.maxSpan = maxSpan;
    this.firstRange = tables.firstRange;
    this.pairRange = tables.pairRange;
    // One candidate at most starts at each of the last maxSpan positions.
    this.starts = new Float64Array(maxSpan + 1);
    this.depths = new Int32Array(maxSpan + 1);
    this.los = new Int32Array(maxSpan + 1);
    this.his = new Int32Array(maxSpan + 1);
  }

  /**
   * Consumes `text` (absolute positions `from`…, continuing where the last
   * call ended) and returns the earliest start whose text so far could still
   * grow into a form, or `Infinity`.
   */
  advance(text: string, from: number): number {
    const { sorted, starts, depths, los, his, pairRange, maxSpan } = this;
    if (sorted.length === 0) return Number.POSITIVE_INFINITY;
    const end = from + text.length;
    let count = this.count;
    let prev = this.prevChar;
    let prevAt = this.prevAt;
    let indentLeft = this.indentLeft;
    // A match open at `end` started at most maxSpan characters before it; no
    // candidate needs to start earlier. So while none is live, the text up to
    // there is skipped, but for enough of it to know whether a blank there is
    // a line's indent.
    const minStart = end - maxSpan + 1;
    const skipTo = minStart - MAX_INDENT - 2;
    for (let p = from; p < end; p++) {
      if (count === 0 && p < skipTo) {
        p = skipTo;
        prev = -1;
        indentLeft = 0;
      }
      const c = text.charCodeAt(p - from);
      if (c <= 32) {
        // Line breaks, and the indent after one, are not there for the matcher.
        if (c === 10 || c === 13) {
          indentLeft = MAX_INDENT;
          continue;
        }
        if ((c === 32 || c === 9) && indentLeft > 0) {
          indentLeft--;
          continue;
        }
      }
      indentLeft = 0;
      // Narrow the live candidates by one character.
      let w = 0;
      for (let k = 0; k < count; k++) {
        const start = starts[k]!;
        if (p - start >= maxSpan) continue;
        const depth = depths[k]!;
        const lo = lowerBound(sorted, los[k]!, his[k]!, depth, c);
        const hi = lowerBound(sorted, lo, his[k]!, depth, c + 1);
        if (lo < hi) {
          starts[w] = start;
          depths[w] = depth + 1;
          los[w] = lo;
          his[w] = hi;
          w++;
        }
      }
      // The candidate starting at the previous character joins with two
      // characters known, from a table: most positions never get further.
      if (prev >= 0 && prevAt >= minStart) {
        let lo: number;
        let hi: number;
        if (prev < 128 && c < 128) {
          lo = pairRange[2 * (128 * prev + c)]!;
          hi = pairRange[2 * (128 * prev + c) + 1]!;
        } else {
          lo = lowerBound(sorted, 0, sorted.length, 0, prev);
          hi = lowerBound(sorted, lo, sorted.length, 0, prev + 1);
          lo = lowerBound(sorted, lo, hi, 1, c);
          hi = lowerBound(sorted, lo, hi, 1, c + 1);
        }
        if (lo < hi) {
          starts[w] = prevAt;
          depths[w] = 2;
          los[w] = lo;
          his[w] = hi;
          w++;
        }
      }
      count = w;
      prev = c;
      prevAt = p;
    }
    this.count = count;
    this.prevChar = prev;
    this.prevAt = prevAt;
    this.indentLeft = indentLeft;
    // A candidate whose prefix is a whole form and nothing longer is complete:
    // the matcher decides it, nothing is left to wait for.
    for (let k = 0; k < count; k++) {
      if (end - starts[k]! > maxSpan) continue;
      if (his[k]! - los[k]! > 1 || sorted[los[k]!]!.length > depths[k]!) return starts[k]!;
    }
    // The last character alone, if some form begins with it.
    if (prev >= 0 && prevAt >= minStart) {
      const lo = prev < 128 ? this.firstRange[2 * prev]! : lowerBound(sorted, 0, sorted.length, 0, prev);
      const hi = prev < 128 ? this.firstRange[2 * prev + 1]! : lowerBound(sorted, lo, sorted.length, 0, prev + 1);
      if (lo < hi) return prevAt;
    }
    return Number.POSITIVE_INFINITY;
  }
}
