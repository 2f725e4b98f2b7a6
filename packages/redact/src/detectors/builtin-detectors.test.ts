import { describe, expect, it } from 'vitest';
import { createRedactor } from '../redactor.js';
import { Fake, fakeCredential } from '../test-support/fake-credentials.js';
import { hardNegatives } from '../test-support/labelled-corpus.js';
import { builtinDetectors } from './builtin-detectors.js';

const fake = new Fake(3);

describe('builtin detectors', () => {
  it('have unique ids and a true- and false-positive corpus each', () => {
    const ids = builtinDetectors.map((d) => d.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(fakeCredential[id], id).toBeTypeOf('function');
      expect(hardNegatives[id], id).toBeTypeOf('function');
    }
  });

  it('declare what streaming relies on: a global pattern, keywords, a bound', () => {
    for (const d of builtinDetectors) {
      expect(d.pattern.flags, d.id).toContain('g');
      expect(d.keywords.length, d.id).toBeGreaterThan(0);
      expect(d.maxLength, d.id).toBeGreaterThan(0);
    }
  });

  it.each(builtinDetectors.map((d) => [d.id, d] as const))(
    '%s keeps the streaming contract: matches start at a keyword, fit maxLength and span, every prefix passes partial',
    (id, d) => {
      const re = new RegExp(d.pattern.source, d.pattern.flags);
      const span = new RegExp(`^(?:${d.span.source})*$`, d.span.flags.replace('g', ''));
      for (let i = 0; i < 10; i++) {
        const [text] = fakeCredential[id]!(fake);
        re.lastIndex = 0;
        const m = re.exec(text);
        expect(m, text).not.toBeNull();
        const whole = m![0];
        const lower = d.caseInsensitiveKeywords ? whole.toLowerCase() : whole;
        const found = d.keywords
          .map((k) => ({ k, i: lower.indexOf(d.caseInsensitiveKeywords ? k.toLowerCase() : k) }))
          .filter((x) => x.i >= 0)
          .sort((a, b) => a.i - b.i || b.k.length - a.k.length);
        const at = found[0]!.i;
        expect(at, `${id}: keyword position`).toBeLessThanOrEqual(d.lookback ?? 0);
        expect(whole.length).toBeLessThanOrEqual(d.maxLength);
        expect(span.test(whole), `${id}: span`).toBe(true);
        if (d.partial) {
          const fromKeyword = whole.slice(at);
          // A stream consults `partial` once the whole keyword has arrived. The
          // whole match may fail it when nothing can extend it (a PEM's END line).
          for (let len = found[0]!.k.length; len < fromKeyword.length; len++) {
            expect(d.partial.test(fromKeyword.slice(0, len)), `${id}: prefix of length ${len}`).toBe(true);
          }
        }
      }
    },
  );

  it.each(builtinDetectors.map((d) => [d.id, d] as const))('%s finds its own credential', (id, d) => {
    const only = createRedactor({ detectors: [d] });
    for (let i = 0; i < 5; i++) {
      const [text, secret] = fakeCredential[id]!(fake);
      const out = only.redact(text);
      expect(out).toContain(`[REDACTED:${id}]`);
      expect(out).not.toContain(secret);
    }
  });

  it.each(builtinDetectors.map((d) => [d.id, d] as const))('%s leaves its hard negatives alone', (id) => {
    const all = createRedactor();
    for (const text of hardNegatives[id]!(fake)) expect(all.findAll(text), text).toEqual([]);
  });

  it('regression #18: Hugging Face tokens with digits and organisation tokens (api_org_) are found', () => {
    const r = createRedactor();
    // Digits guaranteed, and both cases, as in every real base62 token.
    const body = () =>
      `${fake.chars(10, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')}${fake.chars(12, '0123456789')}${fake.chars(12)}`;
    for (const token of [`hf_${body()}`, `api_org_${body()}`]) {
      for (const text of [`HF_TOKEN=${token}`, `use_auth_token='${token}')`, `"token": "${token}"`]) {
        expect(
          r.findAll(text).map((f) => [f.ruleId, f.value]),
          text,
        ).toEqual([['huggingface-token', token]]);
      }
    }
  });

  it('masks only the credential, not the context around it', () => {
    const r = createRedactor();
    expect(r.redact('postgres://app:Zq8#kP2vLm9xWt4s@db:5432/app')).toBe(
      'postgres://app:[REDACTED:database-connection-string]@db:5432/app',
    );
    const bearer = fake.chars(40);
    expect(r.redact(`Authorization: Bearer ${bearer}`)).toBe('Authorization: Bearer [REDACTED:authorization-header]');
  });

  // Each adversarial input is a long run of something a pattern partly
  // accepts. Linear patterns take about twice as long on twice the input.
  const adversarial: Record<string, (n: number) => string> = {
    letters: (n) => 'a'.repeat(n),
    'keyword runs': (n) => 'ghp_sk-AKIAeyJglpat-xoxb-'.repeat(n / 25),
    assignments: (n) => 'password='.repeat(n / 9),
    'unterminated PEM': (n) => `-----BEGIN PRIVATE KEY-----${'A'.repeat(n)}`,
    'PEM headers': (n) => '-----BEGIN RSA PRIVATE KEY-----\n'.repeat(n / 32),
    authorization: (n) => 'Authorization: Bearer '.repeat(n / 22),
    'jwt-ish': (n) => `eyJ${'a'.repeat(n / 2)}.eyJ${'a'.repeat(n / 2)}`,
    'db urls': (n) => 'postgres://u:'.repeat(n / 13),
    base64: (n) => 'QUJD'.repeat(n / 4),
    azure: (n) => 'abc1Q~'.repeat(n / 6),
  };
  it.each(Object.keys(adversarial))('stays linear on %s', (name) => {
    const r = createRedactor();
    const time = (n: number): number => {
      const text = adversarial[name]!(n);
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        r.redact(text);
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    time(100_000); // warm up
    const small = Math.max(time(100_000), 1);
    const large = time(400_000);
    expect(large).toBeLessThan(5_000);
    // 4x the input: linear is ~4x, quadratic ~16x or far more. Below 50 ms
    // the ratio is timer noise.
    expect(large).toBeLessThan(Math.max(50, small * 12));
  });
});
