import type { KnownSecret } from '../finding.js';
import type { EngineFinding } from './engine-finding.js';
import { encodedForms } from './secret-encodings.js';

/** Hash of `q` characters of `s` from `at` (FNV-1a style, then mixed). */
function windowHash(s: string, at: number, q: number): number {
  let h = 0x811c9dc5 | 0;
  for (let k = 0; k < q; k++) h = Math.imul(h ^ s.charCodeAt(at + k), 0x01000193);
  h ^= h >>> 15;
  return Math.imul(h, 0x2c1b3c6d) | 0;
}

/**
 * Finds every registered form of every known secret in one pass, however
 * many there are: a sampled multi-pattern Rabin-Karp.
 *
 * With L the shortest registered form and q ≤ L a window length, every
 * occurrence of a form contains a window of q characters that starts at a
 * multiple of s = L − q + 1 in the text. So the text is hashed only at every
 * s-th position (for 16-character secrets, one window in 9), and each form
 * is indexed under the hashes of its s windows at offsets 0…s−1. A window's
 * hash is tested against a compact bit filter; only on a hit is the chained
 * table consulted and the candidate compared in full. This keeps the inner
 * loop to a few integer operations per character and memory small (no
 * per-character automaton state), which is what V8 runs fastest; the
 * benchmark (`npm run bench -- redact`) compares it with a naive loop.
 *
 * Matches are leftmost-longest and non-overlapping.
 */
export class KnownSecretMatcher {
  readonly size: number;
  /** Longest registered form; a stream never holds back more for known secrets. */
  readonly maxLength: number;
  private readonly q: number;
  private readonly step: number;
  private readonly filterShift: number;
  private readonly filter: Int32Array;
  private readonly heads: Int32Array;
  private readonly headMask: number;
  private readonly entryHash: Int32Array;
  private readonly entryForm: Int32Array;
  private readonly entryOffset: Int32Array;
  private readonly entryNext: Int32Array;
  private readonly forms: string[] = [];
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  /** Forms sorted by UTF-16 order, for "is this a prefix of some form" queries. */
  private readonly sorted: string[];

  constructor(secrets: Iterable<KnownSecret>, minSecretLength: number) {
    const seen = new Map<string, KnownSecret>();
    for (const s of secrets) {
      if (s.value.length < minSecretLength) continue;
      for (const form of encodedForms(s.value)) {
        if (form.length < Math.min(minSecretLength, s.value.length) || seen.has(form)) continue;
        seen.set(form, s);
      }
    }
    for (const [form, secret] of seen) {
      this.forms.push(form);
      this.names.push(secret.name);
      this.values.push(secret.value);
    }
    this.size = this.forms.length;
    let min = Number.POSITIVE_INFINITY;
    let max = 0;
    for (const f of this.forms) {
      min = Math.min(min, f.length);
      max = Math.max(max, f.length);
    }
    this.maxLength = max;
    const shortest = this.size === 0 ? 1 : min;
    this.q = shortest <= 4 ? shortest : Math.min(8, Math.max(4, shortest >> 1));
    this.step = shortest - this.q + 1;

    const entries = this.size * this.step;
    // ~16 filter bits per entry keeps false hits near 6 %, within 2^16..2^24 bits.
    const filterBits = Math.min(24, Math.max(16, Math.ceil(Math.log2(Math.max(1, entries) * 16))));
    this.filterShift = 32 - filterBits;
    this.filter = new Int32Array(1 << (filterBits - 5));
    const headBits = Math.max(4, Math.ceil(Math.log2(Math.max(1, entries) * 2)));
    this.heads = new Int32Array(1 << headBits).fill(-1);
    this.headMask = (1 << headBits) - 1;
    this.entryHash = new Int32Array(entries);
    this.entryForm = new Int32Array(entries);
    this.entryOffset = new Int32Array(entries);
    this.entryNext = new Int32Array(entries);
    let e = 0;
    for (let i = 0; i < this.size; i++) {
      const form = this.forms[i]!;
      for (let o = 0; o < this.step; o++) {
        const h = windowHash(form, o, this.q);
        const bit = h >>> this.filterShift;
        this.filter[bit >>> 5]! |= 1 << (bit & 31);
        const slot = h & this.headMask;
        this.entryHash[e] = h;
        this.entryForm[e] = i;
        this.entryOffset[e] = o;
        this.entryNext[e] = this.heads[slot]!;
        this.heads[slot] = e;
        e++;
      }
    }
    this.sorted = [...this.forms].sort();
  }

  /** Appends the matches in `text` at or after `from` to `out`, in order. */
  findAll(text: string, out: EngineFinding[], from = 0): void {
    if (this.size === 0) return;
    const n = text.length;
    const q = this.q;
    const step = this.step;
    const filter = this.filter;
    const shift = this.filterShift;
    let hits: number[] | undefined; // pairs: start, form index
    for (let at = from; at + q <= n; at += step) {
      let h = 0x811c9dc5 | 0;
      for (let k = 0; k < q; k++) h = Math.imul(h ^ text.charCodeAt(at + k), 0x01000193);
      h ^= h >>> 15;
      h = Math.imul(h, 0x2c1b3c6d) | 0;
      const bit = h >>> shift;
      if ((filter[bit >>> 5]! & (1 << (bit & 31))) === 0) continue;
      for (let e = this.heads[h & this.headMask]!; e >= 0; e = this.entryNext[e]!) {
        if (this.entryHash[e] !== h) continue;
        const start = at - this.entryOffset[e]!;
        const form = this.entryForm[e]!;
        if (start >= from && text.startsWith(this.forms[form]!, start)) {
          hits ??= [];
          hits.push(start, form);
        }
      }
    }
    if (!hits) return;
    const order: number[] = [];
    for (let i = 0; i < hits.length; i += 2) order.push(i);
    order.sort((a, b) => hits[a]! - hits[b]! || this.forms[hits[b + 1]!]!.length - this.forms[hits[a + 1]!]!.length);
    let end = -1;
    for (const i of order) {
      const start = hits[i]!;
      if (start < end) continue;
      const form = hits[i + 1]!;
      const value = this.forms[form]!;
      end = start + value.length;
      out.push({
        kind: 'known',
        ruleId: this.names[form]!,
        start,
        end,
        value,
        context: start,
        canonical: this.values[form]!,
      });
    }
  }

  /** A prefix tracker over the registered forms, for streams. */
  prefixTracker(): FormPrefixTracker {
    this.prefixTables ??= prefixTables(this.sorted);
    return new FormPrefixTracker(this.sorted, this.prefixTables);
  }

  private prefixTables: PrefixTables | undefined;
}

interface PrefixTables {
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

function prefixTables(sorted: readonly string[]): PrefixTables {
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
 */
export class FormPrefixTracker {
  private readonly sorted: readonly string[];
  private readonly maxLength: number;
  private readonly firstRange: Int32Array;
  private readonly pairRange: Int32Array;
  /** Live candidates: start (absolute), range lo, range hi; at most maxLength of them. */
  private readonly starts: Float64Array;
  private readonly los: Int32Array;
  private readonly his: Int32Array;
  private count = 0;
  /** The character before `pos`, −1 at the start. */
  private lastChar = -1;

  constructor(sorted: readonly string[], tables: PrefixTables) {
    this.sorted = sorted;
    this.maxLength = sorted.reduce((m, f) => Math.max(m, f.length), 0);
    this.firstRange = tables.firstRange;
    this.pairRange = tables.pairRange;
    this.starts = new Float64Array(this.maxLength + 1);
    this.los = new Int32Array(this.maxLength + 1);
    this.his = new Int32Array(this.maxLength + 1);
  }

  /**
   * Consumes `text` (absolute positions `from`…, continuing where the last
   * call ended) and returns the earliest
   * start whose text so far could still grow into a form, or `Infinity`.
   */
  advance(text: string, from: number): number {
    if (this.sorted.length === 0) return Number.POSITIVE_INFINITY;
    const end = from + text.length;
    // Positions further back than the longest form cannot start a match.
    const minStart = end - this.maxLength + 1;
    const { starts, los, his } = this;
    let prev = this.lastChar;
    for (let p = from; p < end; p++) {
      const c = text.charCodeAt(p - from);
      let w = 0;
      for (let k = 0; k < this.count; k++) {
        const depth = p - starts[k]!;
        const lo = this.lower(los[k]!, his[k]!, depth, c);
        const hi = this.lower(lo, his[k]!, depth, c + 1);
        if (lo < hi) {
          starts[w] = starts[k]!;
          los[w] = lo;
          his[w] = hi;
          w++;
        }
      }
      // The candidate starting at the previous character joins with two
      // characters known, from a table: most positions never get further.
      if (p - 1 >= minStart && prev >= 0) {
        let lo: number;
        let hi: number;
        if (prev < 128 && c < 128) {
          lo = this.pairRange[2 * (128 * prev + c)]!;
          hi = this.pairRange[2 * (128 * prev + c) + 1]!;
        } else {
          lo = this.lower(0, this.sorted.length, 0, prev);
          hi = this.lower(lo, this.sorted.length, 0, prev + 1);
          lo = this.lower(lo, hi, 1, c);
          hi = this.lower(lo, hi, 1, c + 1);
        }
        if (lo < hi) {
          starts[w] = p - 1;
          los[w] = lo;
          his[w] = hi;
          w++;
        }
      }
      this.count = w;
      prev = c;
    }
    this.lastChar = prev;
    // A candidate whose prefix is a whole form and nothing longer is complete:
    // the matcher decides it, nothing is left to wait for.
    for (let k = 0; k < this.count; k++) {
      const depth = end - starts[k]!;
      if (his[k]! - los[k]! > 1 || this.sorted[los[k]!]!.length > depth) return starts[k]!;
    }
    // The last character alone, if some form begins with it.
    if (end - 1 >= minStart && prev >= 0) {
      const lo = prev < 128 ? this.firstRange[2 * prev]! : this.lower(0, this.sorted.length, 0, prev);
      const hi = prev < 128 ? this.firstRange[2 * prev + 1]! : this.lower(lo, this.sorted.length, 0, prev + 1);
      if (lo < hi) return end - 1;
    }
    return Number.POSITIVE_INFINITY;
  }

  private lower(lo: number, hi: number, depth: number, c: number): number {
    return lowerBound(this.sorted, lo, hi, depth, c);
  }
}
