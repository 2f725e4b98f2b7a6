import { describe, expect, it } from 'vitest';
import { auditHistoryBatches, generateAuditHistory } from './audit-history-generator.js';
import { HISTORY_INCIDENTS, type HistoryIncidentKind } from './history-incidents.js';

const digest = (weeks: number, seed: number, incidents?: readonly HistoryIncidentKind[]) => {
  const history = generateAuditHistory({ seed, weeks, ...(incidents ? { incidents } : {}) });
  const hashes: string[] = [];
  // The first 20,000 records (two days and a half) chained: enough to tell histories apart.
  for (const batch of auditHistoryBatches(history)) {
    hashes.push(batch.records[batch.records.length - 1]!.hash);
    if (hashes.length === 20) break;
  }
  return hashes;
};

describe('generateAuditHistory', () => {
  it('is deterministic from its seed, and another seed gives another history', () => {
    const a = digest(1, 42, []);
    expect(digest(1, 42, [])).toEqual(a);
    expect(digest(1, 43, [])).not.toEqual(a);
  });

  it('keeps time order, and labels every record of each injected incident with it', () => {
    const history = generateAuditHistory({ seed: 3, weeks: 3 });
    let previous = 0;
    const seen = new Map<number, number>();
    for (const e of history.events()) {
      expect(e.at).toBeGreaterThanOrEqual(previous);
      previous = e.at;
      if (e.incident >= 0) seen.set(e.incident, (seen.get(e.incident) ?? 0) + 1);
    }
    expect([...seen.keys()].sort((x, y) => x - y)).toEqual(HISTORY_INCIDENTS.map((_, i) => i));
    // The issue's own example: a GPU inference node reading the model-store key at 03:00 on a Sunday.
    const sunday = HISTORY_INCIDENTS.findIndex((k) => k.id === 'off-hours-sunday-model-store');
    const at = [...history.events()].filter((e) => e.incident === sunday).map((e) => new Date(e.at));
    expect(at.every((d) => d.getUTCDay() === 0 && d.getUTCHours() === 3)).toBe(true);
  });

  it('leaves the normal records unchanged when an incident kind is added (each draws from its own stream)', () => {
    const normal = (incidents: readonly HistoryIncidentKind[]) =>
      [...generateAuditHistory({ seed: 5, weeks: 2, incidents }).events()]
        .filter((e) => e.incident < 0)
        .map((e) => `${e.at} ${e.event.request_id}`);
    const extra: HistoryIncidentKind = {
      id: 'example-new-kind',
      rule: 'honeytoken',
      description: 'an example of a kind added by another rule',
      day: (weeks) => weeks * 7 - 1,
      inject(ctx, dayStart) {
        const { task, at } = ctx.login(dayStart + 3_600_000, 'coord', 'bootstrap:bac_example', ctx.world.coordIps[0]!);
        ctx.end(ctx.read(at + 1_000, task, 'kv/finance/legacy-admin'), task);
      },
    };
    expect(normal([extra])).toEqual(normal([]));
  });

  it('refuses a start that is not a Monday midnight, and incidents outside the history', () => {
    expect(() => generateAuditHistory({ start: '2026-01-06T00:00:00.000Z' })).toThrow(/Monday/);
    expect(() => generateAuditHistory({ weeks: 1 })).toThrow(/outside the history/);
  });
});
