import { describe, expect, it } from 'vitest';
import { formatActiveHours, parseActiveHours, validateActiveWindows, withinActiveHours } from './active-hours.js';

const at = (iso: string) => Date.parse(iso);

describe('declared active hours', () => {
  it('parses windows, day ranges (wrapping too) and zones, and formats them back to the same windows', () => {
    const windows = parseActiveHours('Mon-Fri 07:00-19:00 Europe/Berlin, sat 22:00-02:00,Fri-Mon 00:00-24:00 UTC');
    expect(windows).toEqual([
      { days: [0, 1, 2, 3, 4], start: 420, end: 1140, zone: 'Europe/Berlin' },
      { days: [5], start: 1320, end: 120, zone: 'UTC' },
      { days: [4, 5, 6, 0], start: 0, end: 1440, zone: 'UTC' },
    ]);
    const text = formatActiveHours(windows);
    expect(text).toBe('Mon-Fri 07:00-19:00 Europe/Berlin, Sat 22:00-02:00 UTC, Fri-Mon 00:00-24:00 UTC');
    expect(parseActiveHours(text)).toEqual(windows);
    expect(validateActiveWindows(windows)).toEqual(windows);
  });

  it('judges each window in its own zone, daylight saving included', () => {
    const office = parseActiveHours('Mon-Fri 07:00-19:00 Europe/Berlin');
    // Winter (UTC+1): 07:00 in Berlin is 06:00 UTC.
    expect(withinActiveHours(office, at('2026-01-12T05:59:00Z'))).toBe(false);
    expect(withinActiveHours(office, at('2026-01-12T06:00:00Z'))).toBe(true);
    expect(withinActiveHours(office, at('2026-01-12T17:59:00Z'))).toBe(true);
    expect(withinActiveHours(office, at('2026-01-12T18:00:00Z'))).toBe(false);
    // Summer (UTC+2): 07:00 in Berlin is 05:00 UTC.
    expect(withinActiveHours(office, at('2026-07-13T05:00:00Z'))).toBe(true);
    expect(withinActiveHours(office, at('2026-07-13T04:59:00Z'))).toBe(false);
    expect(withinActiveHours(office, at('2026-07-13T16:59:00Z'))).toBe(true);
    expect(withinActiveHours(office, at('2026-07-13T17:00:00Z'))).toBe(false);
    // Across the change (Sunday 2026-03-29, 01:00 UTC): Monday morning is already summer time.
    expect(withinActiveHours(office, at('2026-03-30T05:30:00Z'))).toBe(true);
    // Sunday 03:00 in Berlin: outside.
    expect(withinActiveHours(office, at('2026-03-01T02:00:00Z'))).toBe(false);
    // Friday 23:30 UTC is Saturday 00:30 in Berlin: the weekday is the zone's, not UTC's.
    expect(withinActiveHours(parseActiveHours('Sat 00:00-01:00 Europe/Berlin'), at('2026-01-16T23:30:00Z'))).toBe(true);
  });

  it('runs a window past midnight into the next day', () => {
    const night = parseActiveHours('Sat 22:00-02:00 UTC');
    expect(withinActiveHours(night, at('2026-01-17T23:00:00Z'))).toBe(true); // Saturday night
    expect(withinActiveHours(night, at('2026-01-18T01:59:00Z'))).toBe(true); // Sunday early
    expect(withinActiveHours(night, at('2026-01-18T02:00:00Z'))).toBe(false);
    expect(withinActiveHours(night, at('2026-01-17T01:00:00Z'))).toBe(false); // Saturday early: Friday was not declared
  });

  it('refuses malformed input with CUSTOS_ERR_ACTIVE_HOURS_INVALID, naming the part', () => {
    for (const [bad, says] of [
      ['', /no window/],
      ['Mon-Fri 07:00-19:00 Not/AZone', /not a time zone/],
      ['Mon-Frx 07:00-19:00 UTC', /not a day/],
      ['Mon 24:00-01:00 UTC', /not a time of day/],
      ['Mon 07:00-24:01 UTC', /not a time of day/],
      ['Mon 07:00-07:00 UTC', /empty window/],
      ['Mon 7:00-19:00 UTC', /not a window/],
      ['Mon-Fri 07:00-19:00 Europe/Berlin; rm -rf', /not a window/],
      [Array.from({ length: 17 }, () => 'Mon 01:00-02:00').join(','), /at most 16/],
      ['x'.repeat(3000), /at most 2048/],
    ] as const) {
      expect(() => parseActiveHours(bad), bad.slice(0, 40)).toThrow(
        expect.objectContaining({ code: 'CUSTOS_ERR_ACTIVE_HOURS_INVALID', message: expect.stringMatching(says) }),
      );
    }
    expect(() => validateActiveWindows([{ days: [7], start: 0, end: 60, zone: 'UTC' }])).toThrow(
      expect.objectContaining({ code: 'CUSTOS_ERR_ACTIVE_HOURS_INVALID' }),
    );
  });
});
