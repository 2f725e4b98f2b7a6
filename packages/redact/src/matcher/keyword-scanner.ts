/** A keyword to look for, and which detector it belongs to. */
export interface Keyword {
  /** Lower-cased when `ci`. ASCII only, at least 3 characters. */
  text: string;
  ci: boolean;
  runner: number;
}

const FOLD = new Uint8Array(128);
for (let c = 0; c < 128; c++) FOLD[c] = c >= 65 && c <= 90 ? c + 32 : c;

const GRAM = 4;
const SET_BITS = 21;
const mix = (gram: number): number => Math.imul(gram, 0x9e3779b1) >>> (32 - SET_BITS);

/** Both cases of an ASCII letter, else the character itself. */
const variants = (c: number, ci: boolean): number[] =>
  ci && FOLD[c] !== c ? [c, FOLD[c]!] : ci && c >= 97 && c <= 122 ? [c, c - 32] : [c];

/**
 * Finds every occurrence of every detector keyword in one pass. The last 4
 * characters seen are kept as one 32-bit integer (a byte each); it is hashed
 * into a 2^21-bit set holding every 4-character start of every keyword (in
 * every letter case for case-insensitive keywords, followed by any byte for
 * 3-character keywords). Positions the set lets through (about 3 % of
 * ordinary text) are compared in full afterwards, outside the hot loop.
 * Four characters, not two or three, because prose is full of "sk", "red"
 * and "cli" but rarely of "redi" or "clic". This replaces one `indexOf` or
 * regex scan per keyword, whose cost grows with the number of detectors.
 */
export class KeywordScanner {
  private readonly keywords: readonly Keyword[];
  private readonly set = new Int32Array(1 << (SET_BITS - 5));
  /** 4-gram -> keyword indices */
  private readonly byGram = new Map<number, number[]>();
  private candidates = new Int32Array(1024);

  constructor(keywords: readonly Keyword[]) {
    this.keywords = keywords;
    keywords.forEach((k, i) => {
      const codes = [...k.text].map((ch) => ch.charCodeAt(0));
      if (codes.length < 3 || codes.some((c) => c >= 128)) {
        throw new Error(`detector keywords must be 3+ ASCII characters: ${k.text}`);
      }
      let grams: number[] = [0];
      for (let j = 0; j < GRAM; j++) {
        const options = j < codes.length ? variants(codes[j]!, k.ci) : [...Array(256).keys()];
        const next = new Set<number>();
        for (const g of grams) for (const c of options) next.add((g << 8) | c);
        grams = [...next];
      }
      for (const g of grams) {
        const bit = mix(g);
        this.set[bit >>> 5]! |= 1 << (bit & 31);
        const list = this.byGram.get(g);
        if (!list) this.byGram.set(g, [i]);
        else if (!list.includes(i)) list.push(i);
      }
    });
  }

  /**
   * Calls `onHit(position, keyword index)` for every occurrence starting at or
   * after `from`, in order of position.
   */
  scan(text: string, from: number, onHit: (at: number, keyword: number) => void): void {
    const n = text.length;
    const set = this.set;
    let found = 0;
    let cand = this.candidates;
    let gram = 0;
    // Hot loop: one shift, one OR, one multiply, one bit test per character.
    // Characters beyond Latin-1 alias to their low byte: that can only cause
    // a spurious candidate, which the full comparison rejects.
    for (let i = from; i < n; i++) {
      gram = (gram << 8) | (text.charCodeAt(i) & 255);
      const bit = Math.imul(gram, 0x9e3779b1) >>> (32 - SET_BITS);
      if ((set[bit >>> 5]! & (1 << (bit & 31))) !== 0) {
        if (found === cand.length) {
          const bigger = new Int32Array(cand.length * 2);
          bigger.set(cand);
          cand = bigger;
          this.candidates = cand;
        }
        cand[found++] = i;
      }
    }
    // A 3-character keyword ending the text: the set holds their
    // grams followed by any byte, so shifting in zeros finds them.
    for (let i = n; i < n + 1; i++) {
      gram <<= 8;
      const bit = mix(gram);
      if ((set[bit >>> 5]! & (1 << (bit & 31))) !== 0) {
        if (found === cand.length) {
          const bigger = new Int32Array(cand.length * 2);
          bigger.set(cand);
          cand = bigger;
          this.candidates = cand;
        }
        cand[found++] = i;
      }
    }
    for (let j = 0; j < found; j++) {
      const start = cand[j]! - (GRAM - 1);
      if (start < from) continue;
      let g = 0;
      for (let k = 0; k < GRAM; k++) g = (g << 8) | (start + k < n ? text.charCodeAt(start + k) & 255 : 0);
      const list = this.byGram.get(g);
      if (!list) continue;
      for (const k of list) {
        const kw = this.keywords[k]!;
        if (start + kw.text.length > n) continue;
        if (kw.ci ? matchesFolded(text, start, kw.text) : text.startsWith(kw.text, start)) onHit(start, k);
      }
    }
  }
}

function matchesFolded(text: string, at: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k++) {
    const c = text.charCodeAt(at + k);
    if ((c < 128 ? FOLD[c] : c) !== lower.charCodeAt(k)) return false;
  }
  return true;
}
