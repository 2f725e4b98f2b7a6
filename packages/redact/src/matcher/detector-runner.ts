import type { Detector } from '../detectors/detector.js';
import { isPlaceholder, shannonEntropy } from '../detectors/detector-checks.js';
import type { EngineFinding } from './engine-finding.js';

/**
 * Runs one detector over a text. The detector's keywords are a prefilter: a
 * text that contains none of them is not scanned by the pattern at all, which
 * is the common case and keeps the detectors' cost near that of `indexOf`.
 */
export class DetectorRunner {
  readonly detector: Detector;
  private readonly pattern: RegExp;
  private readonly keywords: readonly string[];
  private readonly hasSecretGroup: boolean;

  constructor(detector: Detector) {
    this.detector = detector;
    const flags = detector.pattern.flags.includes('g') ? detector.pattern.flags : `${detector.pattern.flags}g`;
    this.hasSecretGroup = detector.pattern.source.includes('(?<secret>');
    // 'd' gives the offsets of the `secret` group; it only costs on a match.
    this.pattern = new RegExp(detector.pattern.source, this.hasSecretGroup ? `${flags}d` : flags);
    this.keywords = detector.caseInsensitiveKeywords
      ? detector.keywords.map((k) => k.toLowerCase())
      : detector.keywords;
  }

  /** `lower` is `text.toLowerCase()` when the keywords are case-insensitive. */
  mayMatch(text: string, lower: () => string): boolean {
    const haystack = this.detector.caseInsensitiveKeywords ? lower() : text;
    for (const k of this.keywords) if (haystack.includes(k)) return true;
    return false;
  }

  run(text: string, out: EngineFinding[], from = 0): void {
    const re = this.pattern;
    const d = this.detector;
    // Starting at `from` (not 0) keeps a match in the context from hiding one
    // after it; look-behinds still see the context.
    re.lastIndex = from;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m[0].length === 0) {
        re.lastIndex++; // a user-supplied pattern that matches nothing must not loop
        continue;
      }
      if (m.index < from) continue;
      let start = m.index;
      let end = start + m[0].length;
      if (this.hasSecretGroup) {
        const span = m.indices?.groups?.secret;
        if (!span) {
          re.lastIndex = m.index + 1;
          continue;
        }
        [start, end] = span;
      }
      const value = text.slice(start, end);
      if (
        isPlaceholder(value) ||
        (d.minEntropy !== undefined && shannonEntropy(value) < d.minEntropy) ||
        (d.validate && !d.validate(value))
      ) {
        // A rejected match must not hide one that starts inside it
        // (`token = password = <real token>`), and results must not depend on
        // where scanning began (streams scan from the cut).
        re.lastIndex = m.index + 1;
        continue;
      }
      out.push({ kind: 'detector', ruleId: d.id, start, end, value, context: m.index, canonical: value });
    }
  }
}
