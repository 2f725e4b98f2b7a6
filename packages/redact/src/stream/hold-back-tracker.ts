import type { DetectorRunner } from '../matcher/detector-runner.js';
import type { FormPrefixTracker } from '../matcher/form-prefix-tracker.js';
import type { Keyword, KeywordScanner } from '../matcher/keyword-scanner.js';
import type { RedactionEngine } from '../matcher/redaction-engine.js';

interface Candidate {
  /** Earliest position (absolute) a match through this keyword can start at. */
  start: number;
  keywordAt: number;
  runner: DetectorRunner;
  /** Characters before this (absolute) were already checked against `span`. */
  checkedTo: number;
}

/** Span classes as ASCII lookup tables; the regex is consulted only beyond ASCII. */
/** ASCII-only lower-casing: keywords are ASCII, and full Unicode lower-casing can change a string's length. */
const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

function spanTester(span: RegExp): (code: number, ch: string) => boolean {
  const ascii = new Uint8Array(128);
  const re = new RegExp(span.source, span.flags.replace('g', ''));
  for (let c = 0; c < 128; c++) ascii[c] = re.test(String.fromCharCode(c)) ? 1 : 0;
  return (code, ch) => (code < 128 ? ascii[code] === 1 : re.test(ch));
}

interface SharedTables {
  spans: ((code: number, ch: string) => boolean)[];
  keywordPrefixes: Map<string, number>;
  /** Every suffix of every proper keyword prefix, ASCII-lower-cased. */
  prefixSuffixes: Set<string>;
  maxKeyword: number;
}

/** Tables that depend only on the detectors: built once per engine, shared by its streams. */
const tablesByEngine = new WeakMap<RedactionEngine, SharedTables>();
function sharedTables(engine: RedactionEngine): SharedTables {
  let t = tablesByEngine.get(engine);
  if (t) return t;
  const keywordPrefixes = new Map<string, number>();
  const prefixSuffixes = new Set<string>();
  for (const k of engine.keywords) {
    const lookback = engine.runners[k.runner]!.detector.lookback ?? 0;
    for (let len = 1; len < k.text.length; len++) {
      const prefix = k.text.slice(0, len);
      const key = (k.ci ? 'i:' : 'c:') + prefix;
      keywordPrefixes.set(key, Math.max(lookback, keywordPrefixes.get(key) ?? 0));
      const folded = asciiLower(prefix);
      for (let j = 0; j < folded.length; j++) prefixSuffixes.add(folded.slice(j));
    }
  }
  t = {
    spans: engine.runners.map((r) => spanTester(r.detector.span)),
    keywordPrefixes,
    prefixSuffixes,
    maxKeyword: engine.keywords.reduce((m, k) => Math.max(m, k.text.length), 0),
  };
  tablesByEngine.set(engine, t);
  return t;
}

/**
 * Works out, as text arrives, the earliest position that could still be the
 * start of a match, so a stream holds back only from there:
 *
 * - known secrets: the longest suffix that is a proper prefix of a registered
 *   form (positions ruled out once stay ruled out, so this is amortised O(1)
 *   binary searches per character);
 * - detectors: every keyword occurrence opens a candidate, which closes once
 *   the text after it can no longer be a prefix of a match (its `partial`
 *   regex fails, a character outside its `span` arrives, or it is longer than
 *   the detector's `maxLength`); a suffix that is the start of a keyword is a
 *   candidate too.
 *
 * All positions are absolute (characters since the stream began); `buffer`
 * holds the text from `base` on.
 */
export class HoldBackTracker {
  private readonly known: FormPrefixTracker;
  private readonly runners: readonly DetectorRunner[];
  private readonly spans: ((code: number, ch: string) => boolean)[];
  private readonly keywords: readonly Keyword[];
  private readonly scanner: KeywordScanner;
  /** Proper prefixes of keywords (lower-cased for case-insensitive ones) -> the largest lookback among them. */
  private readonly keywordPrefixes: ReadonlyMap<string, number>;
  private readonly prefixSuffixes: ReadonlySet<string>;
  private readonly maxKeyword: number;
  private scannedTo = 0;
  private candidates: Candidate[] = [];

  constructor(engine: RedactionEngine) {
    this.known = engine.known.prefixTracker();
    this.runners = engine.runners;
    this.keywords = engine.keywords;
    this.scanner = engine.scanner;
    const tables = sharedTables(engine);
    this.spans = tables.spans;
    this.keywordPrefixes = tables.keywordPrefixes;
    this.prefixSuffixes = tables.prefixSuffixes;
    this.maxKeyword = tables.maxKeyword;
  }

  /** The earliest absolute position to hold back from; `base + buffer.length` when none. */
  update(buffer: string, base: number): number {
    const end = base + buffer.length;
    let hold = end;

    // Known secrets: the new characters only.
    const newFrom = Math.max(this.scannedTo, base);
    hold = Math.min(hold, this.known.advance(buffer.slice(newFrom - base), newFrom));
    if (this.runners.length === 0) {
      this.scannedTo = end;
      return hold;
    }

    // New keyword occurrences: those that end in text not scanned before.
    const scanFrom = Math.max(base, this.scannedTo - this.maxKeyword + 1);
    this.scanner.scan(buffer, scanFrom - base, (i, k) => {
      const at = base + i;
      const kw = this.keywords[k]!;
      if (at + kw.text.length <= this.scannedTo) return;
      const runner = this.runners[kw.runner]!;
      const start = Math.max(base, at - (runner.detector.lookback ?? 0));
      this.candidates.push({ start, keywordAt: at, runner, checkedTo: at });
    });
    this.scannedTo = end;

    // Keep the candidates that more text could still turn into a match.
    const open: Candidate[] = [];
    for (const c of this.candidates) {
      const d = c.runner.detector;
      if (end - c.start > d.maxLength) continue;
      if (d.partial) {
        if (!d.partial.test(buffer.slice(c.keywordAt - base))) continue;
      } else {
        const inSpan = this.spans[this.runners.indexOf(c.runner)]!;
        let ok = true;
        for (let p = c.checkedTo; p < end; p++) {
          const code = buffer.charCodeAt(p - base);
          if (!inSpan(code, buffer[p - base]!)) {
            ok = false;
            break;
          }
        }
        if (!ok) continue;
        c.checkedTo = end;
      }
      open.push(c);
      hold = Math.min(hold, c.start);
    }
    this.candidates = open;

    // A suffix that is the beginning of a keyword. Suffixes are tried from
    // the shortest; once one is not the end of any keyword prefix, no longer
    // one can be a keyword prefix either.
    const tail = buffer.slice(-(this.maxKeyword - 1));
    const lowerTail = asciiLower(tail);
    for (let len = 1; len <= tail.length; len++) {
      const folded = lowerTail.slice(-len);
      if (!this.prefixSuffixes.has(folded)) break;
      const c = this.keywordPrefixes.get(`c:${tail.slice(-len)}`);
      const i = this.keywordPrefixes.get(`i:${folded}`);
      if (c !== undefined || i !== undefined) {
        hold = Math.min(hold, Math.max(base, end - len - Math.max(c ?? 0, i ?? 0)));
      }
    }
    return hold;
  }
}
