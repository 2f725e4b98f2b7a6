import { describe, expect, it, vi } from 'vitest';
import { nextCronTime, parseCron } from './cron-schedule.js';

const at = (iso: string) => Date.parse(iso);
const next = (expr: string, after: string) => new Date(nextCronTime(parseCron(expr), at(after))).toISOString();

describe('cron schedules (UTC)', () => {
  it('finds the next matching minute', () => {
    expect(next('*/15 * * * *', '2026-03-01T10:07:30Z')).toBe('2026-03-01T10:15:00.000Z');
    expect(next('0 2 * * *', '2026-03-01T02:00:00Z')).toBe('2026-03-02T02:00:00.000Z');
    expect(next('30 9 1 * *', '2026-12-15T00:00:00Z')).toBe('2027-01-01T09:30:00.000Z');
    expect(next('0 0 29 2 *', '2026-03-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
    expect(next('0 8-18/5 * * 1-5', '2026-11-21T12:00:00Z')).toBe('2026-11-23T08:00:00.000Z'); // Sat → Mon
    expect(next('0 12 * * 7', '2026-11-21T12:00:00Z')).toBe('2026-11-22T12:00:00.000Z'); // 7 = Sunday
  });

  it('day-of-month and day-of-week restricted together match either', () => {
    expect(next('0 0 15 * 1', '2026-11-10T00:00:00Z')).toBe('2026-11-15T00:00:00.000Z');
  });

  it('refuses malformed expressions', () => {
    for (const bad of ['* * * *', '60 * * * *', '*/0 * * * *', '5-1 * * * *', '@hourly', '0 0 * JAN *']) {
      expect(() => parseCron(bad)).toThrow();
    }
    expect(() => nextCronTime(parseCron('0 0 31 2 *'), Date.now())).toThrow();
  });

  it('gives up on an unsatisfiable expression after about four years ahead, not millions of days (a request waits for it)', () => {
    const days = vi.spyOn(Date.prototype, 'setUTCDate');
    try {
      for (const never of ['0 0 31 2 *', '* * 30 2 *', '0 0 31 4,6,9,11 *']) {
        days.mockClear();
        expect(() => nextCronTime(parseCron(never), at('2026-03-01T00:00:00Z'))).toThrow(/never matches/);
        expect(days.mock.calls.length).toBeLessThanOrEqual(4 * 366 + 1);
      }
    } finally {
      days.mockRestore();
    }
  });
});
