import type { KnownSecret } from '../finding.js';
import type { EngineFinding } from './engine-finding.js';
import { encodedForms } from './secret-encodings.js';

const BITS = 22; // 4 Mi-bit filter (512 KiB): about 1 % occupied by 10,000 secrets x ~14 forms
const BASE = 0x01000193;

/**
 * Finds every registered form of every known secret in one pass, whatever
 * their number: a multi-pattern Rabin-Karp. A rolling hash of the next `q`
 * characters (q = the shortest pattern, at most 8) is tested against a bit
 * filter; only on a hit (about 1 % of positions with 10,000 secrets) is a map
 * consulted and candidates compared. Unlike Aho-Corasick it keeps no
 * per-character state table, so it is small (patterns + 512 KiB) and its inner
 * loop is a few integer operations, which is what V8 runs fastest.
 *
 * Matches are leftmost-longest and non-overlapping.
 */
export class KnownSecretMatcher {
  readonly size: number;
  /** Longest registered form; a stream never holds back more for known secrets. */
  readonly maxLength: number;
  private readonly q: number;
  private readonly powOut: number;
  private readonly filter = new Int32Array(1 << (BITS - 5));
  /** window hash -> candidate pattern indices, longest first */
  private readonly byHash = new Map<number, number[]>();
  private readonly patterns: string[] = [];
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  /** Patterns sorted by UTF-16 order, for "is this a prefix of some pattern" queries. */
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
      this.patterns.push(form);
      this.names.push(secret.name);
      this.values.push(secret.value);
    }
    this.size = this.patterns.length;
    this.maxLength = this.patterns.reduce((m, p) => Math.max(m, p.length), 0);
    this.q = Math.min(
      8,
      this.patterns.reduce((m, p) => Math.min(m, p.length), Number.POSITIVE_INFINITY),
    );
    let pow = 1;
    for (let i = 1; i < this.q; i++) pow = Math.imul(pow, BASE);
    this.powOut = pow;
    for (let i = 0; i < this.patterns.length; i++) {
      const h = this.hashAt(this.patterns[i]!, 0);
      const idx = h >>> (32 - BITS);
      this.filter[idx >>> 5]! |= 1 << (idx & 31);
      const list = this.byHash.get(h);
      if (list) list.push(i);
      else this.byHash.set(h, [i]);
    }
    for (const list of this.byHash.values()) list.sort((a, b) => this.patterns[b]!.length - this.patterns[a]!.length);
    this.sorted = [...this.patterns].sort();
  }

  private hashAt(text: string, at: number): number {
    let h = 0;
    for (let i = 0; i < this.q; i++) h = (Math.imul(h, BASE) + text.charCodeAt(at + i)) | 0;
    return h;
  }

  /** Appends the matches in `text` at or after `from` to `out`, in order. */
  findAll(text: string, out: EngineFinding[], from = 0): void {
    const q = this.q;
    const n = text.length;
    if (this.size === 0 || n - from < q) return;
    const filter = this.filter;
    const powOut = this.powOut;
    const shift = 32 - BITS;
    let i = from;
    let h = this.hashAt(text, i);
    for (;;) {
      const idx = h >>> shift;
      if ((filter[idx >>> 5]! & (1 << (idx & 31))) !== 0) {
        const hit = this.matchAt(text, i, h);
        if (hit >= 0) {
          const p = this.patterns[hit]!;
          out.push({
            kind: 'known',
            ruleId: this.names[hit]!,
            start: i,
            end: i + p.length,
            value: p,
            context: i,
            canonical: this.values[hit]!,
          });
          i += p.length;
          if (i + q > n) return;
          h = this.hashAt(text, i);
          continue;
        }
      }
      if (i + q >= n) return;
      h = (Math.imul(h - Math.imul(text.charCodeAt(i), powOut), BASE) + text.charCodeAt(i + q)) | 0;
      i++;
    }
  }

  private matchAt(text: string, i: number, h: number): number {
    const list = this.byHash.get(h);
    if (!list) return -1;
    for (const k of list) if (text.startsWith(this.patterns[k]!, i)) return k;
    return -1;
  }

  /**
   * True when `text.slice(from)` is a proper prefix of some registered form,
   * i.e. more text could complete (or lengthen) a match starting at `from`.
   */
  couldExtend(text: string, from: number): boolean {
    const len = text.length - from;
    if (len <= 0 || len >= this.maxLength) return false;
    const tail = text.slice(from);
    const a = this.sorted;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid]! < tail) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < a.length && a[k]!.startsWith(tail); k++) if (a[k]!.length > len) return true;
    return false;
  }
}
