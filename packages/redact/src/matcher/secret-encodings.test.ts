import { describe, expect, it } from 'vitest';
import { createRedactor } from '../redactor.js';
import { Fake } from '../test-support/fake-credentials.js';

const fake = new Fake(5);
const secret = `${fake.password(14)} é`; // non-ASCII on purpose: encodings work on UTF-8 bytes
const r = createRedactor({ secrets: [{ name: 'task-db', value: secret }], detectors: 'none' });
const marker = '[REDACTED:task-db]';

describe('known secrets in encoded forms', () => {
  it('finds the raw value', () => {
    expect(r.redact(`value=${secret};`)).toBe(`value=${marker};`);
  });

  it.each([0, 1, 2, 3, 4, 5])('finds it inside base64 with %i bytes before it (every alignment)', (n) => {
    const prefix = 'u'.repeat(n);
    for (const encoding of ['base64', 'base64url'] as const) {
      const encoded = Buffer.from(`${prefix}${secret}!tail`, encoding === 'base64' ? 'utf8' : 'utf8').toString(
        encoding,
      );
      const out = r.redact(`Authorization: Basic ${encoded}`);
      expect(out).toContain(marker);
      // What remains of the encoded text cannot be decoded back to the secret.
      expect(Buffer.from(out.replace(/.*Basic /, ''), encoding).toString()).not.toContain(secret.slice(0, 10));
    }
  });

  it('finds it as base64(user:password)', () => {
    const header = Buffer.from(`admin:${secret}`).toString('base64');
    expect(r.findAll(`Basic ${header}`)).toHaveLength(1);
  });

  it('finds hex in lower and upper case, URL-encoding and JSON escaping', () => {
    const hex = Buffer.from(secret).toString('hex');
    for (const form of [hex, hex.toUpperCase(), encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)]) {
      expect(r.redact(`x ${form} y`)).toBe(`x ${marker} y`);
    }
    expect(r.redact(`?q=${encodeURIComponent(secret).replace(/%20/g, '+')}`)).toBe(`?q=${marker}`);
  });

  it('finds the value with surrounding quotes trimmed', () => {
    const quoted = createRedactor({ secrets: [{ name: 'q', value: `"${secret}"` }], detectors: 'none' });
    expect(quoted.redact(`pw: ${secret}.`)).toBe('pw: [REDACTED:q].');
  });

  it('does not register values shorter than 8 characters unless told to', () => {
    expect(createRedactor({ secrets: [{ name: 's', value: 'abc1234' }] }).redact('abc1234')).toBe('abc1234');
    const short = createRedactor({ secrets: [{ name: 's', value: 'abc1234' }], minSecretLength: 4 });
    expect(short.redact('x abc1234 y')).toBe('x [REDACTED:s] y');
  });

  it('prefers the longest of overlapping secrets', () => {
    const two = createRedactor({
      secrets: [
        { name: 'short', value: 'abcdefgh' },
        { name: 'long', value: 'abcdefghijkl' },
      ],
      detectors: 'none',
    });
    expect(two.redact('abcdefghijkl abcdefgh')).toBe('[REDACTED:long] [REDACTED:short]');
  });

  it('finds any of 10,000 secrets', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => ({ name: `k${i}`, value: fake.chars(24) }));
    const big = createRedactor({ secrets: many, detectors: 'none' });
    const picks = [0, 1234, 5000, 9999].map((i) => many[i]!);
    const text = picks.map((s) => `lorem ${s.value} ipsum ${Buffer.from(s.value).toString('base64')}`).join('\n');
    expect(big.findAll(text).map((f) => f.ruleId)).toEqual(picks.flatMap((s) => [s.name, s.name]));
  });
});
