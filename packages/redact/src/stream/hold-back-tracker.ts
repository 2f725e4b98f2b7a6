import type { DetectorRunner } from '../matcher/detector-runner.js';
import type { KnownSecretMatcher } from '../matcher/known-secret-matcher.js';

interface Candidate {
  /** Earliest position (absolute) a match through this keyword can start at. */
  start: number;
  keywordAt: number;
  runner: DetectorRunner;
  /** Characters before this (absolute) were already checked against `span`. */
  checkedTo: number;
}

/** Span classes as ASCII lookup tables; the regex is consulted only beyond ASCII. */
function spanTester(span: RegExp): (code: number, ch: string) => boolean {
  const ascii = new Uint8Array(128);
  const re = new RegExp(span.source, span.flags.replace('g', ''));
  for (let c = 0; c < 128; c++) ascii[c] = re.test(String.fromCharCode(c)) ? 1 : 0;
  return (code, ch) => (code < 128 ? ascii[code] === 1 : re.test(ch));
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
  private readonly known: KnownSecretMatcher;
  private readonly runners: readonly DetectorRunner[];
  private readonly spans: ((code: number, ch: string) => boolean)[];
  private readonly keywords: { text: string; ci: boolean; runner: number }[];
  private readonly maxKeyword: number;
  private readonly anyCaseInsensitive: boolean;
  private knownFrom = 0;
  private scannedTo = 0;
  private candidates: Candidate[] = [];

  constructor(known: KnownSecretMatcher, runners: readonly DetectorRunner[]) {
    this.known = known;
    this.runners = runners;
    this.spans = runners.map((r) => spanTester(r.detector.span));
    this.keywords = runners.flatMap((r, i) =>
      r.detector.keywords.map((k) => ({
        text: r.detector.caseInsensitiveKeywords ? k.toLowerCase() : k,
        ci: r.detector.caseInsensitiveKeywords === true,
        runner: i,
      })),
    );
    this.maxKeyword = this.keywords.reduce((m, k) => Math.max(m, k.text.length), 0);
    this.anyCaseInsensitive = this.keywords.some((k) => k.ci);
  }

  /** The earliest absolute position to hold back from; `base + buffer.length` when none. */
  update(buffer: string, base: number): number {
    const end = base + buffer.length;
    let hold = end;

    // Known secrets.
    if (this.known.size > 0) {
      this.knownFrom = Math.max(this.knownFrom, base, end - this.known.maxLength + 1);
      while (this.knownFrom < end && !this.known.couldExtend(buffer, this.knownFrom - base)) this.knownFrom++;
      hold = Math.min(hold, this.knownFrom);
    }
    if (this.runners.length === 0) return hold;

    // New keyword occurrences: those that end in text not scanned before.
    const scanFrom = Math.max(base, this.scannedTo - this.maxKeyword + 1);
    const window = buffer.slice(scanFrom - base);
    const lowerWindow = this.anyCaseInsensitive ? window.toLowerCase() : window;
    for (const k of this.keywords) {
      const hay = k.ci ? lowerWindow : window;
      for (let i = hay.indexOf(k.text); i >= 0; i = hay.indexOf(k.text, i + 1)) {
        const at = scanFrom + i;
        if (at + k.text.length <= this.scannedTo) continue;
        const runner = this.runners[k.runner]!;
        const start = Math.max(base, at - (runner.detector.lookback ?? 0));
        this.candidates.push({ start, keywordAt: at, runner, checkedTo: at });
      }
    }
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

    // A suffix that is the beginning of a keyword.
    const rawTail = buffer.slice(-this.maxKeyword);
    const lowerTail = this.anyCaseInsensitive ? rawTail.toLowerCase() : rawTail;
    for (const k of this.keywords) {
      const max = Math.min(k.text.length - 1, rawTail.length);
      if (max <= 0) continue;
      const tail = k.ci ? lowerTail : rawTail;
      for (let len = max; len > 0; len--) {
        if (tail.endsWith(k.text.slice(0, len))) {
          const lookback = this.runners[k.runner]!.detector.lookback ?? 0;
          hold = Math.min(hold, Math.max(base, end - len - lookback));
          break;
        }
      }
    }
    return hold;
  }
}
