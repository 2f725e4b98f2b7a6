import type { Detector } from '../detectors/detector.js';
import { isPlaceholder, shannonEntropy } from '../detectors/detector-checks.js';
import type { EngineFinding } from './engine-finding.js';

/**
 * Runs one detector at the positions where its keywords occur. The pattern is
 * compiled sticky, so each attempt costs one anchored match rather than a
 * scan; because every match starts at a keyword (less `lookback`), trying
 * the keyword positions in order finds exactly what a global scan would.
 */
export class DetectorRunner {
  readonly detector: Detector;
  private readonly sticky: RegExp;
  private readonly hasSecretGroup: boolean;

  constructor(detector: Detector) {
    this.detector = detector;
    this.hasSecretGroup = detector.pattern.source.includes('(?<secret>');
    const flags = detector.pattern.flags.replace(/[gy]/g, '');
    // 'd' gives the offsets of the `secret` group; it only costs on a match.
    this.sticky = new RegExp(detector.pattern.source, `${flags}y${this.hasSecretGroup ? 'd' : ''}`);
  }

  /**
   * `hits` are keyword positions in ascending order. Matches starting before
   * `from` are context only and not reported.
   */
  run(text: string, hits: readonly number[], out: EngineFinding[], from = 0): void {
    const re = this.sticky;
    const d = this.detector;
    const lookback = d.lookback ?? 0;
    let next = from; // like a global regex's lastIndex
    for (const hit of hits) {
      for (let p = Math.max(next, hit - lookback); p <= hit; p++) {
        re.lastIndex = p;
        const m = re.exec(text);
        if (m === null || m[0].length === 0) continue;
        let start = p;
        let end = p + m[0].length;
        if (this.hasSecretGroup) {
          const span = m.indices?.groups?.secret;
          if (!span) continue;
          [start, end] = span;
        }
        const value = text.slice(start, end);
        if (
          isPlaceholder(value) ||
          (d.minEntropy !== undefined && shannonEntropy(value) < d.minEntropy) ||
          (d.validate && !d.validate(value))
        ) {
          // A rejected match must not hide one that starts inside it
          // (`token = password = <real token>`): go on from the next position.
          continue;
        }
        out.push({ kind: 'detector', ruleId: d.id, start, end, value, context: p, canonical: value });
        next = p + m[0].length;
        break;
      }
    }
  }
}
