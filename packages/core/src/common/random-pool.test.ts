import { describe, expect, it } from 'vitest';
import { randomNonSecretBytes, timeOrderedId } from './random-pool.js';

describe('randomNonSecretBytes', () => {
  it('never hands out the same bytes twice, across pool refills', () => {
    const seen = new Set<string>();
    // 4 KiB pool: 3,000 draws of 12 bytes refill it several times.
    for (let i = 0; i < 3_000; i++) {
      const nonce = randomNonSecretBytes(12);
      expect(nonce.length).toBe(12);
      seen.add(nonce.toString('hex'));
    }
    expect(seen.size).toBe(3_000);
  });

  it('returns buffers of their own: changing one does not change the next', () => {
    const a = randomNonSecretBytes(16);
    const copy = Buffer.from(a);
    a.fill(0);
    const b = randomNonSecretBytes(16);
    expect(b.equals(Buffer.alloc(16))).toBe(false);
    expect(copy.equals(Buffer.alloc(16))).toBe(false);
  });

  it('looks uniform: every byte value turns up about equally often', () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 4_000; i++) for (const b of randomNonSecretBytes(32)) counts[b]!++;
    // 128,000 bytes: 500 expected per value; a fair source stays far inside these bounds.
    expect(Math.min(...counts)).toBeGreaterThan(380);
    expect(Math.max(...counts)).toBeLessThan(620);
  });

  it('serves large requests directly and refuses nonsense sizes', () => {
    expect(randomNonSecretBytes(1_000).length).toBe(1_000);
    expect(randomNonSecretBytes(0).length).toBe(0);
    expect(() => randomNonSecretBytes(-1)).toThrow(RangeError);
    expect(() => randomNonSecretBytes(1.5)).toThrow(RangeError);
  });
});

describe('timeOrderedId', () => {
  it('is 22 base64url characters carrying the time in its first 6 bytes and 80 random bits', () => {
    const now = Date.UTC(2026, 10, 22, 12, 0, 0);
    const id = timeOrderedId(now);
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const bytes = Buffer.from(id, 'base64url');
    expect(bytes.readUIntBE(0, 6)).toBe(now);
    const ids = new Set(Array.from({ length: 1_000 }, () => timeOrderedId(now)));
    expect(ids.size).toBe(1_000);
  });

  it('gives ids made in the same millisecond a common prefix', () => {
    const now = Date.now();
    expect(timeOrderedId(now).slice(0, 8)).toBe(timeOrderedId(now).slice(0, 8));
  });
});
