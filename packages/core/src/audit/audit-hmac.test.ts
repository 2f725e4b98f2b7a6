import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAuditHmac, isAuditHmac } from './audit-hmac.js';

describe('createAuditHmac', () => {
  it('is stable for one key and matches HMAC-SHA256 over the UTF-8 bytes', () => {
    const key = randomBytes(32);
    const hmac = createAuditHmac(key);
    const value = `tok_${randomBytes(12).toString('hex')}`;
    const expected = `hmac-sha256:${createHmac('sha256', key).update(Buffer.from(value, 'utf8')).digest('hex')}`;
    expect(hmac(value)).toBe(expected);
    expect(hmac(value)).toBe(hmac(value));
    expect(hmac(new TextEncoder().encode(value))).toBe(expected);
    expect(isAuditHmac(hmac(value))).toBe(true);
  });

  it('is keyed: another key gives another value', () => {
    const value = 'same-value';
    expect(createAuditHmac(randomBytes(32))(value)).not.toBe(createAuditHmac(randomBytes(32))(value));
  });

  it('keeps its own copy of the key, so the caller may zero its buffer', () => {
    const key = randomBytes(32);
    const hmac = createAuditHmac(key);
    const before = hmac('x');
    key.fill(0);
    expect(hmac('x')).toBe(before);
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => createAuditHmac(randomBytes(16))).toThrow(RangeError);
  });

  it('recognises only the exact HMAC form', () => {
    expect(isAuditHmac('hmac-sha256:abc')).toBe(false);
    expect(isAuditHmac(`hmac-sha256:${'A'.repeat(64)}`)).toBe(false);
    expect(isAuditHmac(`hmac-sha256:${'a'.repeat(64)}`)).toBe(true);
  });
});
