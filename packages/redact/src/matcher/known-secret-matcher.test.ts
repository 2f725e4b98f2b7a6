import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EngineFinding } from './engine-finding.js';
import { KnownSecretMatcher } from './known-secret-matcher.js';
import { encodedForms } from './secret-encodings.js';

/** Reference: leftmost-longest, non-overlapping, by brute force. */
function naive(forms: readonly string[], text: string): [number, string][] {
  const out: [number, string][] = [];
  for (let i = 0; i < text.length; ) {
    let best = '';
    for (const f of forms) if (f.length > best.length && text.startsWith(f, i)) best = f;
    if (best) {
      out.push([i, best]);
      i += best.length;
    } else i++;
  }
  return out;
}

describe('KnownSecretMatcher (sampled Rabin-Karp)', () => {
  it('finds exactly what a brute-force leftmost-longest search finds', () => {
    // A tiny alphabet makes overlaps, repeats and near misses common.
    const word = (min: number) =>
      fc.string({ unit: fc.constantFrom('a', 'b', 'c', '%', 'é'), minLength: min, maxLength: 14 });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.array(word(1), { minLength: 1, maxLength: 6 }),
        fc.string({ unit: fc.constantFrom('a', 'b', 'c', '%', 'é', ' '), maxLength: 120 }),
        (min, values, noise) => {
          const secrets = values.map((value, i) => ({ name: `s${i}`, value }));
          const matcher = new KnownSecretMatcher(secrets, min);
          const forms = [
            ...new Set(
              secrets
                .filter((s) => s.value.length >= min)
                .flatMap((s) => encodedForms(s.value).filter((f) => f.length >= Math.min(min, s.value.length))),
            ),
          ];
          // Plant some of the forms in the noise.
          const text = noise + forms.slice(0, 3).join(noise.slice(0, 3)) + noise;
          const out: EngineFinding[] = [];
          matcher.findAll(text, out);
          expect(out.map((f) => [f.start, f.value])).toEqual(naive(forms, text));
        },
      ),
      { numRuns: Number(process.env.REDACT_PROPERTY_RUNS ?? 500) },
    );
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
});
