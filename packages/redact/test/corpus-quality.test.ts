import { describe, expect, it } from 'vitest';
import { builtinDetectors, createRedactor, type Detector, type Redactor } from '../src/index.js';
import { Fake } from '../src/test-support/fake-credentials.js';
import { corpusFor, generalNegatives, type LabelledText } from '../src/test-support/labelled-corpus.js';

/**
 * Precision and recall per detector and overall on the labelled corpus.
 * Floors only go up: raise them when a change improves the figures.
 */
const FLOOR = { detectorPrecision: 1, detectorRecall: 1, overallPrecision: 1, overallRecall: 1 } as const;

interface Score {
  tp: number;
  fp: number;
  fn: number;
}

function score(redactor: Redactor, texts: readonly LabelledText[]): Score {
  const s: Score = { tp: 0, fp: 0, fn: 0 };
  for (const { text, secrets } of texts) {
    const findings = redactor.findAll(text);
    const used = new Set<number>();
    for (const secret of secrets) {
      const at = text.indexOf(secret);
      const end = at + secret.length;
      const covering = findings.filter((f) => f.start < end && f.end > at);
      let covered = at;
      for (const f of covering) if (f.start <= covered) covered = Math.max(covered, f.end);
      if (covered >= end) s.tp++;
      else s.fn++;
      for (const f of covering) used.add(findings.indexOf(f));
    }
    s.fp += findings.filter((_, i) => !used.has(i)).length;
  }
  return s;
}

const ratio = (a: number, b: number): number => (b === 0 ? 1 : a / b);
const general = generalNegatives(new Fake(7)).map((text) => ({ text, secrets: [] }));

describe('labelled corpus', () => {
  const rows: string[] = [];
  const total: Score = { tp: 0, fp: 0, fn: 0 };

  for (const d of builtinDetectors) {
    it(`${d.id}: precision and recall at or above the floor`, () => {
      const corpus = corpusFor(d.id);
      const r = createRedactor({ detectors: [d as Detector] });
      const s = score(r, [...corpus.positives, ...corpus.negatives, ...general]);
      const precision = ratio(s.tp, s.tp + s.fp);
      const recall = ratio(s.tp, s.tp + s.fn);
      rows.push(
        `| ${d.id} | ${corpus.positives.length} | ${corpus.negatives.length + general.length} | ${precision.toFixed(3)} | ${recall.toFixed(3)} |`,
      );
      expect({ id: d.id, precision, recall }).toEqual({
        id: d.id,
        precision: expect.toSatisfy((p: number) => p >= FLOOR.detectorPrecision),
        recall: expect.toSatisfy((p: number) => p >= FLOOR.detectorRecall),
      });
    });
  }

  it('all detectors together: overall precision and recall at or above the floor', () => {
    const r = createRedactor();
    const texts: LabelledText[] = [...general];
    for (const d of builtinDetectors) {
      const c = corpusFor(d.id);
      texts.push(...c.positives, ...c.negatives);
    }
    Object.assign(total, score(r, texts));
    const precision = ratio(total.tp, total.tp + total.fp);
    const recall = ratio(total.tp, total.tp + total.fn);
    rows.push(
      `| **overall** | ${total.tp + total.fn} | ${texts.length - total.tp - total.fn} | ${precision.toFixed(3)} | ${recall.toFixed(3)} |`,
    );
    console.log(
      `\n| detector | positives | negatives | precision | recall |\n|---|---|---|---|---|\n${rows.join('\n')}\n`,
    );
    expect(precision).toBeGreaterThanOrEqual(FLOOR.overallPrecision);
    expect(recall).toBeGreaterThanOrEqual(FLOOR.overallRecall);
  });
});
