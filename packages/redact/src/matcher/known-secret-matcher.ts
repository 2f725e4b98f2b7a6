import type { KnownSecret } from '../finding.js';
import type { EngineFinding } from './engine-finding.js';
import { FormPrefixTracker, type PrefixTables, prefixTables } from './form-prefix-tracker.js';
import { matchForms } from './known-secret-forms.js';
import { JunctionReader, maxJunctions, maxSpan } from './line-junctions.js';

const SEED = 0x811c9dc5 | 0;
const PRIME = 0x01000193;

/** Hash of `q` characters of `s` from `at` (FNV-1a style, then mixed). */
function windowHash(s: string, at: number, q: number): number {
  let h = SEED;
  for (let k = 0; k < q; k++) h = Math.imul(h ^ s.charCodeAt(at + k), PRIME);
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
 * The text is read without its line junctions (`line-junctions.ts`): the
 * sampling grid runs over that view, so a form split by a line break (LF,
 * CRLF or CR, with an indent) is found like any other. Inside a line the view
 * is the text itself and the loop is the plain one; only the windows that
 * straddle a junction are read through it.
 *
 * Matches are leftmost-longest and non-overlapping.
 */
export class KnownSecretMatcher {
  readonly size: number;
  /** Longest registered form. */
  readonly maxLength: number;
  /** Most original characters a match can span, junctions included: a stream never holds back more for known secrets. */
  readonly maxSpan: number;
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
      for (const form of matchForms(s.value)) {
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
    this.maxSpan = maxSpan(max);
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
    const lines = new JunctionReader(text);
    const hits: number[] = []; // triples: start, end, form index
    // Line breaks: one search for LF per line, and one for CR per CR (output
    // rarely has any, and then it is a single search in all).
    let nextCr = text.indexOf('\r', from);
    if (nextCr < 0) nextCr = n;
    let junction = text.indexOf('\n', from);
    if (junction < 0 || junction > nextCr) junction = nextCr;
    let at = from;
    let lineStart = from;
    scan: for (;;) {
      // Windows inside the current line: the plain loop.
      const lastInside = junction - q;
      for (; at <= lastInside; at += step) {
        let h = SEED;
        for (let k = 0; k < q; k++) h = Math.imul(h ^ text.charCodeAt(at + k), PRIME);
        h ^= h >>> 15;
        h = Math.imul(h, 0x2c1b3c6d) | 0;
        const bit = h >>> shift;
        if ((filter[bit >>> 5]! & (1 << (bit & 31))) === 0) continue;
        for (let e = this.heads[h & this.headMask]!; e >= 0; e = this.entryNext[e]!) {
          if (this.entryHash[e] !== h) continue;
          const form = this.entryForm[e]!;
          const start = at - this.entryOffset[e]!;
          const end = start + this.forms[form]!.length;
          if (start >= lineStart && end <= junction) {
            if (start >= from && text.startsWith(this.forms[form]!, start)) hits.push(start, end, form);
          } else {
            this.probeThrough(text, at, e, from, lines, hits);
          }
        }
      }
      if (junction >= n) break;
      // The grid goes on as if the junction were not there: a window that
      // starts before it takes its last characters from the next line, and a
      // position past it lies `at - junction` characters into the next line.
      // Past the junction: most often one LF and no indent.
      const c1 = text.charCodeAt(junction + 1);
      const after =
        text.charCodeAt(junction) === 10 && c1 !== 10 && c1 !== 13 && c1 !== 32 && c1 !== 9
          ? junction + 1
          : lines.skip(junction);
      if (after >= n) break;
      if (nextCr < after) {
        nextCr = text.indexOf('\r', after);
        if (nextCr < 0) nextCr = n;
      }
      let nextJunction = text.indexOf('\n', after);
      if (nextJunction < 0 || nextJunction > nextCr) nextJunction = nextCr;
      for (; at < junction; at += step) {
        const need = q - (junction - at);
        let h: number;
        if (after + need <= nextJunction) {
          h = SEED;
          for (let k = at; k < junction; k++) h = Math.imul(h ^ text.charCodeAt(k), PRIME);
          for (let k = after; k < after + need; k++) h = Math.imul(h ^ text.charCodeAt(k), PRIME);
          h ^= h >>> 15;
          h = Math.imul(h, 0x2c1b3c6d) | 0;
        } else {
          const slow = this.straddlingHash(text, at, lines); // the next line is shorter than the window
          if (slow === undefined) break scan; // fewer than q characters left
          h = slow;
        }
        const bit = h >>> shift;
        if ((filter[bit >>> 5]! & (1 << (bit & 31))) === 0) continue;
        for (let e = this.heads[h & this.headMask]!; e >= 0; e = this.entryNext[e]!) {
          if (this.entryHash[e] === h) this.probeThrough(text, at, e, from, lines, hits);
        }
      }
      const target = after + (at - junction);
      if (target < nextJunction) {
        at = target;
        lineStart = after;
        junction = nextJunction;
        continue;
      }
      // Short lines: walk the view.
      at = advance(lines, after, at - junction, n);
      if (at >= n) break;
      lineStart = at;
      if (nextCr < at) {
        nextCr = text.indexOf('\r', at);
        if (nextCr < 0) nextCr = n;
      }
      junction = text.indexOf('\n', at);
      if (junction < 0 || junction > nextCr) junction = nextCr;
    }
    if (hits.length === 0) return;
    const order: number[] = [];
    for (let i = 0; i < hits.length; i += 3) order.push(i);
    order.sort((a, b) => hits[a]! - hits[b]! || this.forms[hits[b + 2]!]!.length - this.forms[hits[a + 2]!]!.length);
    let end = -1;
    for (const i of order) {
      const start = hits[i]!;
      if (start < end) continue;
      const form = hits[i + 2]!;
      end = hits[i + 1]!;
      out.push({
        kind: 'known',
        ruleId: this.names[form]!,
        start,
        end,
        value: text.slice(start, end),
        context: start,
        canonical: this.values[form]!,
      });
    }
  }

  /** Compares the form of index entry `e` for the window at `at`, reading through line junctions. */
  private probeThrough(text: string, at: number, e: number, from: number, lines: JunctionReader, hits: number[]): void {
    const form = this.entryForm[e]!;
    let s = at;
    for (let k = this.entryOffset[e]!; k > 0 && s >= 0; k--) s = lines.previous(s);
    if (s < from) return;
    const end = this.equalThrough(text, s, form, lines);
    if (end >= 0) hits.push(s, end, form);
  }

  /**
   * Where form `i` ends if it is at `start` in the junction-free view, or −1.
   * A form shorter than SPLIT_MIN_LENGTH may not cross a junction, a longer
   * one only `maxJunctions` of them.
   */
  private equalThrough(text: string, start: number, i: number, lines: JunctionReader): number {
    const form = this.forms[i]!;
    const allowed = maxJunctions(form.length);
    const n = text.length;
    let p = start;
    let junctions = 0;
    for (let k = 0; k < form.length; k++) {
      if (k > 0) {
        p = lines.skip(p);
        junctions += lines.junctions;
        if (junctions > allowed) return -1;
      }
      if (p >= n) return -1;
      if (text.charCodeAt(p) !== form.charCodeAt(k)) return -1;
      p++;
    }
    return p;
  }

  /** Hash of the q characters of the junction-free view from `at`, or undefined at the end of the text. */
  private straddlingHash(text: string, at: number, lines: JunctionReader): number | undefined {
    const n = text.length;
    let h = SEED;
    let p = at;
    for (let k = 0; k < this.q; k++) {
      if (k > 0) p = lines.skip(p);
      if (p >= n) return undefined;
      h = Math.imul(h ^ text.charCodeAt(p), PRIME);
      p++;
    }
    h ^= h >>> 15;
    return Math.imul(h, 0x2c1b3c6d) | 0;
  }

  /** A prefix tracker over the registered forms, for streams. */
  prefixTracker(): FormPrefixTracker {
    this.prefixTables ??= prefixTables(this.sorted);
    return new FormPrefixTracker(this.sorted, this.prefixTables, this.maxSpan);
  }

  private prefixTables: PrefixTables | undefined;
}

/** The position `count` characters after `at` in the junction-free view (at least the text's length at its end). */
function advance(lines: JunctionReader, at: number, count: number, n: number): number {
  let p = at;
  for (let k = 0; k < count; k++) {
    p = lines.skip(p + 1);
    if (p >= n) return n;
  }
  return p;
}
