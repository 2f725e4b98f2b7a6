import { describe, expect, it } from 'vitest';
import { createRedactor } from './redactor.js';
import { Fake, fakeCredential } from './test-support/fake-credentials.js';

const fake = new Fake(9);

describe('createRedactor', () => {
  it('returns sorted, non-overlapping findings and merges overlaps into their union', () => {
    const token = fake.chars(40);
    const r = createRedactor({ secrets: [{ name: 'api', value: token }] });
    const [line] = fakeCredential['aws-access-key-id']!(fake);
    const text = `${line}\nAuthorization: Bearer ${token}\n`;
    const findings = r.findAll(text);
    expect(findings.map((f) => f.ruleId)).toEqual(['aws-access-key-id', 'api']);
    for (const f of findings) expect(text.slice(f.start, f.end)).toBe(f.value);
    expect(findings[0]!.end).toBeLessThanOrEqual(findings[1]!.start);
  });

  it('uses a template replacement', () => {
    const r = createRedactor({ secrets: [{ name: 'db', value: 'correct-horse-battery' }], replacement: '<{name}>' });
    expect(r.redact('pw correct-horse-battery')).toBe('pw <db>');
  });

  it('uses a function replacement', () => {
    const r = createRedactor({
      secrets: [{ name: 'db', value: 'correct-horse-battery' }],
      replacement: (f) => '*'.repeat(f.value.length),
    });
    expect(r.redact('pw correct-horse-battery')).toBe(`pw ${'*'.repeat(21)}`);
  });

  it('maps the same secret to the same keyed-hash marker in every encoding, and different keys differ', () => {
    const value = 'correct-horse-battery';
    const a = createRedactor({ secrets: [{ name: 'db', value }], replacement: { hashKey: 'k1' } });
    const b = createRedactor({ secrets: [{ name: 'db', value }], replacement: { hashKey: 'k2' } });
    const out = a.redact(`${value} ${Buffer.from(value).toString('hex')}`);
    const [m1, m2] = out.split(' ');
    expect(m1).toMatch(/^\[REDACTED:db:[0-9a-f]{12}\]$/);
    expect(m2).toBe(m1);
    expect(b.redact(value)).not.toBe(m1);
    expect(out).not.toContain(value);
  });

  it('refuses a {hash} template without a key', () => {
    expect(() => createRedactor({ replacement: '[{hash}]' })).toThrow(TypeError);
  });

  it('regression #17: accepts plain strings as secrets (the natural first call)', () => {
    const value = fake.password(20);
    const r = createRedactor({ secrets: [value] });
    expect(r.redact(`pw ${value}.`)).toBe('pw [REDACTED:secret].');
    const mixed = createRedactor({ secrets: [value, { name: 'db', value: 'correct-horse-battery' }] });
    expect(mixed.redact(`${value} correct-horse-battery`)).toBe('[REDACTED:secret] [REDACTED:db]');
    // Any iterable works, a Set included.
    expect(createRedactor({ secrets: new Set([value]) }).redact(value)).toBe('[REDACTED:secret]');
  });

  it('regression #17: anything else fails with a TypeError naming the expected shape, never the value', () => {
    const value = fake.password(20);
    const cases: unknown[] = [
      value, // a string instead of a list: would otherwise register each character and hide nothing
      { db: value }, // an object map instead of a list
      [value, 42],
      [null],
      [{ name: 'db' }],
      [{ value }],
      [{ name: 'db', value: Buffer.from(value) }],
      [[value]],
    ];
    for (const secrets of cases) {
      let thrown: unknown;
      try {
        createRedactor({ secrets: secrets as string[] });
      } catch (error) {
        thrown = error;
      }
      expect(thrown, JSON.stringify(secrets)).toBeInstanceOf(TypeError);
      const error = thrown as TypeError & { code?: string };
      expect(error.code).toBe('ERR_INVALID_ARG_TYPE');
      expect(error.message).toContain('{ name: string, value: string }');
      expect(error.message).not.toContain(value);
    }
  });

  it('can run with no detectors', () => {
    const [line] = fakeCredential['github-token']!(fake);
    expect(createRedactor({ detectors: 'none' }).redact(line)).toBe(line);
  });
});

describe('redactObject', () => {
  it('masks secret-named keys whatever they hold, scans other strings, and does not mutate', () => {
    const [line, token] = fakeCredential['github-token']!(fake);
    const input = {
      user: 'ada',
      password: 'x',
      headers: { Authorization: 'Bearer abc', cookie: 'sid=1' },
      nested: [{ apiKey: 42, note: line }],
      usage: { max_tokens: 4096, input_tokens: 12 },
      when: new Date(0),
    };
    const copy = structuredClone(input);
    const r = createRedactor();
    const out = r.redactObject(input);
    expect(input).toEqual(copy);
    expect(out.password).toBe('[REDACTED:password]');
    expect(out.headers).toEqual({ Authorization: '[REDACTED:Authorization]', cookie: '[REDACTED:cookie]' });
    expect(out.nested[0]!.apiKey).toBe('[REDACTED:apiKey]');
    expect(out.nested[0]!.note).not.toContain(token);
    expect(out.usage).toEqual({ max_tokens: 4096, input_tokens: 12 });
    expect(out.user).toBe('ada');
    expect(out.when).toBe(input.when);
  });

  it('handles cycles, Maps and Errors', () => {
    const secret = 'correct-horse-battery';
    const r = createRedactor({ secrets: [{ name: 's', value: secret }] });
    const a: Record<string, unknown> = { m: new Map([['token', 'v']]), e: new Error(`failed with ${secret}`) };
    a.self = a;
    const out = r.redactObject(a) as Record<string, unknown>;
    expect(out.self).toBe(out);
    expect((out.m as Map<string, string>).get('token')).toBe('[REDACTED:token]');
    expect(JSON.stringify(out.e)).not.toContain(secret);
  });

  it('with keepErrors, an Error stays an Error of its own class whose every read is redacted', () => {
    const secret = 'correct-horse-battery';
    const r = createRedactor({ secrets: [{ name: 's', value: secret }] });
    const cause = new TypeError(`inner ${secret}`);
    const error = Object.assign(new RangeError(`outer ${secret}`, { cause }), { password: 'x', n: 1 });
    const view = r.redactObject({ error }, { keepErrors: true }).error;
    expect(view).toBeInstanceOf(RangeError);
    expect(view.constructor.name).toBe('RangeError');
    expect(view.message).toBe('outer [REDACTED:s]');
    expect(view.stack).toMatch(/^RangeError: outer \[REDACTED:s\]\n/);
    expect((view.cause as Error).message).toBe('inner [REDACTED:s]');
    expect(view.cause).toBeInstanceOf(TypeError);
    expect(view.password).toBe('[REDACTED:password]');
    expect(Object.keys(view)).toEqual(['password', 'n']); // enumerability is the original's
    expect(JSON.stringify(view)).toBe('{"password":"[REDACTED:password]","n":1}');
    expect(String(view)).toBe('RangeError: outer [REDACTED:s]');
    expect(error.message).toBe(`outer ${secret}`); // the original is untouched
  });
});
