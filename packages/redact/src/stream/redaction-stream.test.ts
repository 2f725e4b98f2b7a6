import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRedactor } from '../redactor.js';
import { Fake, fakeCredential } from '../test-support/fake-credentials.js';

const fake = new Fake(11);
const known = Array.from({ length: 20 }, (_, i) => ({ name: `s${i}`, value: `${fake.password(8 + (i % 12))}` }));
const redactor = createRedactor({ secrets: known });

/** Credential-shaped pieces, known secrets in their encodings, and near misses. */
const pieces: string[] = [
  ...Object.values(fakeCredential).flatMap((g) => [g(fake)[0], g(fake)[0]]),
  ...known.flatMap((s) => [
    s.value,
    Buffer.from(`user:${s.value}`).toString('base64'),
    Buffer.from(s.value).toString('hex'),
    encodeURIComponent(s.value),
    JSON.stringify({ p: s.value }),
    s.value.slice(0, -1), // a prefix that never completes
    // Split by a line break (with CRLF and an indent), and in another case.
    `${s.value.slice(0, 6)}\n${s.value.slice(6)}`,
    `${s.value.slice(0, 9)}\r\n    ${s.value.slice(9)}`,
    s.value.toUpperCase(),
    `${s.value.slice(0, 5)}\r`, // a CR that turns out not to be a line break
  ]),
  'password',
  'SECRET_KEY=',
  'api_key: "',
  'Authorization: Basic ',
  'aws_secret_access_key = ',
  '"private_key": "',
  'token = ',
  'Authorization: ',
  'Bearer ',
  '-----BEGIN ',
  'postgres://',
  'ghp_',
  'sk-',
  'AKIA',
  'eyJ',
  '\n',
  '\r\n',
  '\n  ',
  ' ',
  '\t',
  '"',
];

const text = fc
  .array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 12 }), fc.constantFrom(' ', '\n', '=', ':')), {
    maxLength: 14,
  })
  .map((parts) => parts.join(''));

/** Splits `s` at the given (sorted, deduplicated) cut points. */
function chunk(s: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => c % (s.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let at = 0;
  for (const p of points) {
    out.push(s.slice(at, p));
    at = p;
  }
  out.push(s.slice(at));
  return out;
}

function streamed(chunks: readonly string[]): { out: string; maxHeld: number } {
  const s = redactor.createStream();
  let out = '';
  for (const c of chunks) out += s.write(c);
  out += s.end();
  return { out, maxHeld: s.maxHeld };
}

describe('redaction stream', () => {
  it('gives the same output as whole-text redaction for any chunking', () => {
    fc.assert(
      fc.property(text, fc.array(fc.nat(), { maxLength: 30 }), (t, cuts) => {
        expect(streamed(chunk(t, cuts)).out).toBe(redactor.redact(t));
      }),
      { numRuns: Number(process.env.REDACT_PROPERTY_RUNS ?? 600) },
    );
  });

  it('gives the same output one character at a time', () => {
    fc.assert(
      fc.property(text, (t) => {
        expect(streamed([...t]).out).toBe(redactor.redact(t));
      }),
      { numRuns: Number(process.env.REDACT_PROPERTY_RUNS ?? 300) },
    );
  });

  it('finds a secret split across every possible boundary', () => {
    const [line, secret] = fakeCredential['github-token']!(fake);
    const input = `log: ${line} and known ${known[3]!.value} end`;
    const whole = redactor.redact(input);
    expect(whole).not.toContain(secret);
    for (let i = 0; i <= input.length; i++) {
      expect(streamed([input.slice(0, i), input.slice(i)]).out).toBe(whole);
    }
  });

  it('regression #9: a known secret split by a line break or shown in another case is redacted at every boundary', () => {
    const value = known[11]!.value; // 19 characters: long enough to be matched across a break and in any case
    for (const shown of [`${value.slice(0, 8)}\r\n  ${value.slice(8)}`, value.toUpperCase()]) {
      const input = `out: ${shown}\nnext line`;
      const whole = redactor.redact(input);
      expect(whole).toBe('out: [REDACTED:s11]\nnext line');
      for (let i = 0; i <= input.length; i++) expect(streamed([input.slice(0, i), input.slice(i)]).out).toBe(whole);
      expect(streamed([...input]).out).toBe(whole);
    }
  });

  it('regression: an assignment name split inside its keyword suffix (SECRET_ | KEY=…) is still redacted', () => {
    const input = `config:\nSECRET_KEY=${fake.chars(24)}\n`;
    const whole = redactor.redact(input);
    expect(whole).toContain('[REDACTED:secret-assignment]');
    for (let i = 0; i <= input.length; i++) expect(streamed([input.slice(0, i), input.slice(i)]).out).toBe(whole);
  });

  it('releases plain prose at once and holds back only a possible start', () => {
    const s = redactor.createStream();
    expect(s.write('The deployment finished. ')).toBe('The deployment finished. ');
    // "ghp" could begin a GitHub token; the space before it is released.
    expect(s.write('Next: ghp')).toBe('Next: ');
    expect(s.held).toBe(3);
    expect(s.write('!')).toBe('ghp!');
    expect(s.held).toBe(0);
    expect(s.end()).toBe('');
  });

  it('holds back no more than the longest possible match', () => {
    const [pem] = fakeCredential['private-key']!(fake);
    const { out, maxHeld } = streamed([...`${pem}\nafter`]);
    expect(out).toBe(redactor.redact(`${pem}\nafter`));
    expect(maxHeld).toBeLessThanOrEqual(12_100);
  });
});
