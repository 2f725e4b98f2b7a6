import type { Detector } from '../detectors/detector.js';
import type { KnownSecret } from '../finding.js';
import type { Replace } from '../replacement/replacement-format.js';
import { DetectorRunner } from './detector-runner.js';
import type { EngineFinding } from './engine-finding.js';
import { type Keyword, KeywordScanner } from './keyword-scanner.js';
import { KnownSecretMatcher } from './known-secret-matcher.js';

/**
 * The matching core shared by whole-text, stream and object redaction: known
 * secrets and detectors, merged into one sorted list of non-overlapping spans.
 */
export class RedactionEngine {
  readonly known: KnownSecretMatcher;
  readonly runners: readonly DetectorRunner[];
  readonly replace: Replace;
  /** Every detector keyword, and one scanner for them (streams share it). */
  readonly keywords: readonly Keyword[];
  readonly scanner: KeywordScanner;
  private readonly keywordRunner: Int32Array;

  constructor(
    secrets: Iterable<KnownSecret>,
    detectors: readonly Detector[],
    minSecretLength: number,
    replace: Replace,
  ) {
    this.known = new KnownSecretMatcher(secrets, minSecretLength);
    this.runners = detectors.map((d) => new DetectorRunner(d));
    const keywords = detectors.flatMap((d, runner) =>
      d.keywords.map((k) => ({
        text: d.caseInsensitiveKeywords ? k.toLowerCase() : k,
        ci: d.caseInsensitiveKeywords === true,
        runner,
      })),
    );
    this.keywords = keywords;
    this.scanner = new KeywordScanner(keywords);
    this.keywordRunner = Int32Array.from(keywords, (k) => k.runner);
    this.replace = replace;
  }

  /**
   * Overlapping matches are merged into their union: if a known secret sits
   * inside an `Authorization` header match, neither part may leak. The merged
   * span takes a known secret's name over a detector's, else the first one's.
   *
   * Text before `from` is context only (a stream's already released text, kept
   * for look-behinds): matches beginning there are not reported, since they
   * were decided when that text was released.
   */
  findAll(text: string, from = 0): EngineFinding[] {
    const raw: EngineFinding[] = [];
    this.known.findAll(text, raw, from);
    if (this.runners.length > 0) {
      const hits: number[][] = this.runners.map(() => []);
      let any = false;
      this.scanner.scan(text, from, (at, keyword) => {
        const list = hits[this.keywordRunner[keyword]!]!;
        if (list[list.length - 1] !== at) list.push(at);
        any = true;
      });
      if (any) {
        for (let r = 0; r < this.runners.length; r++) {
          if (hits[r]!.length > 0) this.runners[r]!.run(text, hits[r]!, raw, from);
        }
      }
    }
    if (raw.length <= 1) return raw;
    raw.sort((a, b) => a.start - b.start || b.end - a.end);
    const merged: EngineFinding[] = [];
    let cur = raw[0]!;
    for (let i = 1; i < raw.length; i++) {
      const f = raw[i]!;
      if (f.start < cur.end) {
        if (f.end > cur.end || f.context < cur.context || (f.kind === 'known' && cur.kind !== 'known')) {
          const keep = cur.kind !== 'known' && f.kind === 'known' ? f : cur;
          const end = Math.max(cur.end, f.end);
          cur = {
            ...keep,
            start: cur.start,
            end,
            value: text.slice(cur.start, end),
            context: Math.min(cur.context, f.context),
          };
        }
      } else {
        merged.push(cur);
        cur = f;
      }
    }
    merged.push(cur);
    return merged;
  }

  /** `text` with the findings (sorted, non-overlapping, within it) replaced. */
  render(text: string, findings: readonly EngineFinding[]): string {
    if (findings.length === 0) return text;
    let out = '';
    let at = 0;
    for (const f of findings) {
      out += text.slice(at, f.start) + this.replace(f, f.canonical);
      at = f.end;
    }
    return out + text.slice(at);
  }
}
