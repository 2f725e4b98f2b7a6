import { describe, expect, it } from 'vitest';
import { AuditArchivePace, AuditArchiveStopped } from './audit-archive-pace.js';

/** A clock that stands still at 0: a wait never ends by itself (only hurry or stop end it). */
const still = () => 0;
const HOUR = 3_600_000;

describe('AuditArchivePace', () => {
  it('waits while the run is ahead of an even schedule, and not when it is behind', async () => {
    const pace = new AuditArchivePace(200);
    const t0 = performance.now();
    await pace.advance(1, 2); // half the work done at once: due at half the spread
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    await pace.advance(2, 2); // all of it: due at the end of the spread
    expect(performance.now() - t0).toBeGreaterThanOrEqual(190);

    // A node too busy to keep the pace: already past due, no wait (an hour-long wait would time the test out).
    const late = { now: 0 };
    const behind = new AuditArchivePace(HOUR, () => late.now);
    late.now = HOUR;
    await behind.advance(1, 2);
    await behind.advance(2, 2);
    // No work to spread (a resumed run's deletes): never waits.
    await new AuditArchivePace(HOUR, still).advance(5, 0);
  });

  it('hurry cuts the wait in progress and every later one', async () => {
    const pace = new AuditArchivePace(HOUR, still);
    const waiting = pace.advance(1, 2);
    setTimeout(() => pace.hurry(), 20);
    await waiting;
    await pace.advance(2, 2);
  });

  it('stop ends the run at its wait, and at any later batch, with AuditArchiveStopped', async () => {
    const pace = new AuditArchivePace(HOUR, still);
    const waiting = pace.advance(1, 2);
    setTimeout(() => pace.stop(), 20);
    await expect(waiting).rejects.toBeInstanceOf(AuditArchiveStopped);
    await expect(pace.advance(2, 2)).rejects.toBeInstanceOf(AuditArchiveStopped);
    // Even where there is nothing to pace: stop is checked first.
    await expect(pace.advance(1, 0)).rejects.toThrow(/stopped/);
  });

  it('a long wait is cut into slices that renew the lease; a lost lease ends the wait', async () => {
    let renewals = 0;
    const keep = {
      everyMs: 10,
      renew: async () => {
        if (++renewals === 5) throw new Error('the audit archival lease was lost');
      },
    };
    await expect(new AuditArchivePace(HOUR).advance(1, 2, keep)).rejects.toThrow('lease was lost');
    expect(renewals).toBe(5);
  });
});
