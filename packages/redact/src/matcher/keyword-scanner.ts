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
/** Each character contributes its low 5 bits: ASCII letters fold to one case for free. */
const BITS_PER_CHAR = 5;
const KEY_MASK = (1 << (GRAM * BITS_PER_CHAR)) - 1;

/**
 * Finds every occurrence of every detector keyword in one pass. The last 4
 * characters seen are packed, 5 low bits each, into a 20-bit key that indexes
 * a bit set (128 KiB) holding the keys of every keyword's first 4 characters
 * (3-character keywords with every possible fourth). The low 5 bits of an
 * ASCII letter are the same in both cases, so case-insensitive keywords cost
 * nothing extra; other characters may collide, which only lets a position
 * through to the full comparison, done afterwards, outside the hot loop.
 * Four characters, not two or three, because prose is full of "sk", "red"
 * and "cli" but rarely of "redi" or "clic". This replaces one `indexOf` or
 * regex scan per keyword, whose cost grows with the number of detectors.
 */
export class KeywordScanner {
  private readonly keywords: readonly Keyword[];
  private readonly set = new Int32Array(1 << (GRAM * BITS_PER_CHAR - 5));
  /** key -> keyword indices */
  private readonly byKey = new Map<number, number[]>();
  private candidates: Int32Array = new Int32Array(1024);

  constructor(keywords: readonly Keyword[]) {
    this.keywords = keywords;
    keywords.forEach((k, i) => {
      const codes = [...k.text].map((ch) => ch.charCodeAt(0));
      if (codes.length < 3 || codes.some((c) => c >= 128)) {
        throw new Error(`detector keywords must be 3+ ASCII characters: ${k.text}`);
      }
      const head = codes.slice(0, GRAM).map((c) => c & 31);
      const fourths = head.length === GRAM ? [head[3]!] : [...Array(32).keys()];
      for (const d of fourths) {
        const key = (((head[0]! << 5) | head[1]!) << 10) | (head[2]! << 5) | d;
        this.set[key >>> 5]! |= 1 << (key & 31);
        const list = this.byKey.get(key);
        if (!list) this.byKey.set(key, [i]);
        else if (!list.includes(i)) list.push(i);
      }
    });
  }

  private grow(): Int32Array {
    const bigger = new Int32Array(this.candidates.length * 2);
    bigger.set(this.candidates);
    this.candidates = bigger;
    return bigger;
  }

  /**
   * Calls `onHit(position, keyword index)` for every occurrence starting at or
   * after `from`, in order of position.
   */
  scan(text: string, from: number, onHit: (at: number, keyword: number) => void): void {
    const n = text.length;
    const set = this.set;
    let found = 0;
    let cand: Int32Array = this.candidates;
    let key = 0;
    // Hot loop: a shift, an OR, an AND and a bit test per character.
    for (let i = from; i < n; i++) {
      key = ((key << BITS_PER_CHAR) | (text.charCodeAt(i) & 31)) & KEY_MASK;
      if ((set[key >>> 5]! & (1 << (key & 31))) !== 0) {
        if (found === cand.length) cand = this.grow();
        cand[found++] = i;
      }
    }
    // One step past the end shifts in a 0: a 3-character keyword ending the
    // text has its key registered with every fourth value, 0 included.
    key = (key << BITS_PER_CHAR) & KEY_MASK;
    if ((set[key >>> 5]! & (1 << (key & 31))) !== 0) {
      if (found === cand.length) cand = this.grow();
      cand[found++] = n;
    }
    for (let j = 0; j < found; j++) {
      const start = cand[j]! - (GRAM - 1);
      if (start < from) continue;
      let k4 = 0;
      for (let k = 0; k < GRAM; k++) k4 = (k4 << 5) | (start + k < n ? text.charCodeAt(start + k) & 31 : 0);
      const list = this.byKey.get(k4);
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
