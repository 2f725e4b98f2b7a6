import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EngineFinding } from './engine-finding.js';
import { matchForms } from './known-secret-forms.js';
import { KnownSecretMatcher } from './known-secret-matcher.js';
import { MAX_INDENT, maxJunctions } from './line-junctions.js';

/**
 * Reference, by brute force and written from the definition: read the text
 * without its junctions (LF, CRLF or CR, plus up to MAX_INDENT blanks), then find
 * leftmost-longest, non-overlapping occurrences of the forms that cross no
 * more junctions than their length allows.
 */
function naive(forms: readonly string[], text: string, from = 0): [number, number][] {
  const at: number[] = []; // original position of each character of the view
  const junctionsBefore: number[] = [];
  let junctions = 0;
  for (let p = from; p < text.length; ) {
    if (text[p] === '\n' || text[p] === '\r') {
      p += text[p] === '\r' && text[p + 1] === '\n' ? 2 : 1;
      for (let k = 0; k < MAX_INDENT && (text[p] === ' ' || text[p] === '\t'); k++) p++;
      junctions++;
      continue;
    }
    at.push(p);
    junctionsBefore.push(junctions);
    p++;
  }
  const view = at.map((p) => text[p]!).join('');
  const out: [number, number][] = [];
  let end = -1;
  for (let i = 0; i < view.length; i++) {
    if (at[i]! < end) continue;
    let best: string | undefined;
    for (const f of forms) {
      const L = f.length;
      if (i + L > view.length || (best && best.length >= L)) continue;
      if (view.slice(i, i + L) !== f) continue;
      if (junctionsBefore[i + L - 1]! - junctionsBefore[i]! > maxJunctions(L)) continue;
      best = f;
    }
    if (best) {
      end = at[i + best.length - 1]! + 1;
      out.push([at[i]!, end]);
    }
  }
  return out;
}

/** The forms the matcher registers for these values (same filter as its constructor). */
function registered(values: readonly string[], min: number): string[] {
  const seen = new Set<string>();
  for (const v of values) {
    if (v.length < min) continue;
    for (const f of matchForms(v)) if (f.length >= Math.min(min, v.length)) seen.add(f);
  }
  return [...seen];
}

const find = (matcher: KnownSecretMatcher, text: string, from = 0): [number, number][] => {
  const out: EngineFinding[] = [];
  matcher.findAll(text, out, from);
  return out.map((f) => [f.start, f.end]);
};

describe('KnownSecretMatcher (sampled Rabin-Karp over the junction-free view)', () => {
  it('finds exactly what a brute-force search of the definition finds', () => {
    // A tiny alphabet makes overlaps, repeats and near misses common; line
    // breaks, blanks and both cases exercise junctions and case folding.
    const unit = fc.constantFrom('a', 'b', 'B', 'c', '1', '%', 'é', '-');
    const word = fc.string({ unit, minLength: 1, maxLength: 24 });
    const noise = fc.string({
      unit: fc.constantFrom('a', 'b', 'B', ' ', '\n', '\r', '\t', '\r\n  ', 'é'),
      maxLength: 80,
    });
    // Planted forms, each possibly re-cased and split by a junction.
    const breaks = fc.constantFrom('', '\n', '\r\n', '\n    ', '\r\n\t', `\n${' '.repeat(MAX_INDENT + 2)}`, '\n\n');
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 14 }),
        fc.array(word, { minLength: 1, maxLength: 5 }),
        noise,
        fc.array(fc.tuple(fc.nat(), fc.nat(), breaks, fc.boolean()), { maxLength: 4 }),
        fc.nat(20),
        (min, values, noiseText, plants, from) => {
          const matcher = new KnownSecretMatcher(
            values.map((value, i) => ({ name: `s${i}`, value })),
            min,
          );
          const forms = registered(values, min);
          let text = noiseText;
          for (const [which, cut, br, upper] of plants) {
            if (forms.length === 0) break;
            const f = forms[which % forms.length]!;
            const shown = upper ? f.toUpperCase() : f;
            const k = cut % (shown.length + 1);
            text += `${shown.slice(0, k)}${br}${shown.slice(k)}${noiseText.slice(0, 3)}`;
          }
          const start = Math.min(from, text.length);
          expect(find(matcher, text, start)).toEqual(naive(forms, text, start));
        },
      ),
      { numRuns: Number(process.env.REDACT_PROPERTY_RUNS ?? 800) },
    );
  });

  it('finds a secret split by a line break (LF, CRLF, CR, with an indent), and all in capitals or small letters', () => {
    const secret = 'k3y-Zq8vLm2xWt4sRp9n';
    const m = new KnownSecretMatcher([{ name: 'k', value: secret }], 8);
    for (const shown of [
      `${secret.slice(0, 7)}\n${secret.slice(7)}`,
      `${secret.slice(0, 12)}\r\n        ${secret.slice(12)}`,
      `${secret.slice(0, 3)}\n\t${secret.slice(3, 10)}\r\t${secret.slice(10)}`,
      secret.toUpperCase(),
      secret.toLowerCase(),
      `${secret.slice(0, 10).toUpperCase()}\n  ${secret.slice(10).toUpperCase()}`,
    ]) {
      const text = `log: ${shown} end`;
      expect(find(m, text), JSON.stringify(shown)).toEqual([[5, 5 + shown.length]]);
    }
  });

  it('keeps the limits that avoid false positives', () => {
    // Short secrets: never across a break, and case only when it is hex.
    const short = new KnownSecretMatcher([{ name: 's', value: 'Tr0ub4dor' }], 8);
    expect(find(short, 'Tr0ub\n4dor')).toEqual([]);
    expect(find(short, 'TR0UB4DOR')).toEqual([]);
    expect(find(short, 'Tr0ub4dor')).toEqual([[0, 9]]);
    const hex = new KnownSecretMatcher([{ name: 'h', value: 'deadbeef00c0ffee' }], 8);
    expect(find(hex, 'x DEADBEEF00C0FFEE y')).toEqual([[2, 18]]);
    // A case change inside the value is not one programs make, and is not looked for.
    const secret0 = 'k3y-Zq8vLm2xWt4sRp9n';
    const m0 = new KnownSecretMatcher([{ name: 'k', value: secret0 }], 8);
    expect(find(m0, `x ${secret0.slice(0, 10)}${secret0.slice(10).toUpperCase()} y`)).toEqual([]);
    // A word is a word in any case: a letters-only value under 20 characters keeps its case.
    const word = new KnownSecretMatcher([{ name: 'w', value: 'Administrators' }], 8);
    expect(find(word, 'the administrators group')).toEqual([]);
    // Base64 is case-sensitive by nature.
    const secret = 'k3y-Zq8vLm2xWt4sRp9n';
    const b64 = Buffer.from(`svc:${secret}`).toString('base64');
    const m = new KnownSecretMatcher([{ name: 'k', value: secret }], 8);
    expect(find(m, `Basic ${b64}`)).toHaveLength(1);
    expect(find(m, `Basic ${b64.toUpperCase()}`)).toEqual([]);
    // Not across a blank-line-sized gap, nor an indent deeper than MAX_INDENT, nor trailing blanks.
    expect(find(m, `${secret.slice(0, 10)}\n${' '.repeat(MAX_INDENT + 1)}${secret.slice(10)}`)).toEqual([]);
    expect(find(m, `${secret.slice(0, 10)}  \n${secret.slice(10)}`)).toEqual([]);
    // Not through more junctions than one per 16 characters, plus one.
    expect(find(m, [...secret].join('\n'))).toEqual([]);
  });

  it('reports, for a stream, the earliest start that could still become a form', () => {
    const matcher = new KnownSecretMatcher([{ name: 'k', value: 'abcdefgh' }], 8);
    const tracker = matcher.prefixTracker();
    expect(tracker.advance('xx ab', 0)).toBe(3);
    expect(tracker.advance('cdefg', 5)).toBe(3);
    // Complete and nothing longer begins with it; but 'h' alone begins a
    // base64 form of the secret ('hYmNkZWZna'), so that one character waits.
    expect(tracker.advance('h', 10)).toBe(10);
    expect(tracker.advance(' a', 11)).toBe(12);
    expect(tracker.advance('z', 13)).toBe(Number.POSITIVE_INFINITY);
  });

  it('a stream holds a prefix across a line break and its indent, and in capitals', () => {
    const matcher = new KnownSecretMatcher([{ name: 'k', value: 'k3y-Zq8vLm2xWt4sRp9n' }], 8);
    const tracker = matcher.prefixTracker();
    expect(tracker.advance('log: K3Y-ZQ8', 0)).toBe(5);
    expect(tracker.advance('\r\n', 12)).toBe(5);
    expect(tracker.advance('    VLM2', 14)).toBe(5);
    expect(tracker.advance('q', 22)).toBe(Number.POSITIVE_INFINITY);
  });
});
