import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditArchivePace } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuditArchiveSchedule } from '../src/audit-archive-schedule.js';
import { resolveServerConfig } from '../src/server-config.js';
import { startTestServer, type TestServer } from './test-server.js';

describe('audit.archive settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-archive-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const withConfig = (archive: unknown) => {
    const file = join(dir, 'custos.json');
    writeFileSync(file, JSON.stringify({ audit: { archive } }));
    return () => resolveServerConfig({ config: file, dev: true, data: dir }, dir);
  };

  it('every and keep_online become a schedule; the directory defaults under the data directory', () => {
    expect(withConfig({ every: '5m', keep_online: '1h' })().audit).toMatchObject({
      archiveDir: join(dir, 'audit-archive'),
      // Each run spread over 80 % of the period by default (docs/audit.md, "Pacing").
      archiveSchedule: { everyMs: 300_000, keepOnlineMs: 3_600_000, spreadMs: 240_000 },
    });
    expect(withConfig({ dir: 'arch' })().audit).toMatchObject({ archiveDir: join(dir, 'arch') });
    expect(withConfig({ dir: 'arch' })().audit.archiveSchedule).toBe(undefined);
    expect(withConfig({ every: '1h' })().audit.archiveSchedule).toEqual({
      everyMs: 3_600_000,
      keepOnlineMs: 86_400_000,
      spreadMs: 2_880_000,
    });
    expect(withConfig({ every: '1h', spread: '10m' })().audit.archiveSchedule).toMatchObject({ spreadMs: 600_000 });
    expect(withConfig({ every: '1h', spread: '0s' })().audit.archiveSchedule).toMatchObject({ spreadMs: 0 });
  });

  it('a typo, a too-short interval or keep_online without every stops the server at start', () => {
    expect(withConfig({ evry: '5m' })).toThrow(/audit.archive.evry is not a setting/);
    expect(withConfig({ every: '10s' })).toThrow(/at least 1m/);
    expect(withConfig({ every: '5m', keep_online: '1s' })).toThrow(/keep_online is at least 1m/);
    expect(withConfig({ keep_online: '1h' })).toThrow(/keep_online needs every/);
    expect(withConfig({ spread: '1m' })).toThrow(/spread needs every/);
    // A spread as long as the period would make each run outlast it, and the next wait a whole period.
    expect(withConfig({ every: '5m', spread: '5m' })).toThrow(/spread is at most 90 % of every/);
    expect(withConfig({ every: '5m', spread: 'soon' })).toThrow(
      expect.objectContaining({ code: 'CUSTOS_ERR_INVALID_TTL' }),
    );
  });
});

describe('scheduled archival on a real node', () => {
  let s: TestServer;
  const archiveDir = mkdtempSync(join(tmpdir(), 'custos-archive-schedule-'));
  beforeAll(async () => {
    s = await startTestServer('sqlite', { audit: { archiveDir, checkpointEvery: 5 } });
    for (let i = 0; i < 12; i++) await s.call({ method: 'GET', url: '/v1/audit/tail?n=1' });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(archiveDir, { recursive: true, force: true });
  });

  it('each run archives what was sealed before now − keep_online, logs counts only, and the chain verifies', async () => {
    const logged: { msg: string; o: object }[] = [];
    const clock = { now: Date.now() };
    const schedule = new AuditArchiveSchedule({
      everyMs: 60_000,
      keepOnlineMs: 60_000,
      archive: (before, options) => s.node.services().archiveAudit(before, options),
      log: { info: (o, msg) => logged.push({ o, msg }), warn: (o, msg) => logged.push({ o, msg }) },
      now: () => clock.now,
    });
    // Nothing is older than keep_online yet.
    await schedule.runOnce();
    expect(readdirSync(archiveDir)).toEqual([]);
    expect(logged).toEqual([]);
    // Two minutes later, everything sealed so far is older than keep_online.
    clock.now += 120_000;
    await schedule.runOnce();
    expect(readdirSync(archiveDir)).toEqual(['audit-archive-000001.jsonl.gz']);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ msg: 'audit archived', o: { archive: 1, first_seq: 1 } });
    expect(JSON.stringify(logged)).not.toContain(archiveDir);
    const verify = await s.call({ method: 'GET', url: '/v1/audit/verify' });
    expect(verify.json()).toMatchObject({ ok: true, archivedThrough: (logged[0]!.o as { last_seq: number }).last_seq });
    await schedule.stop();
  });

  it('a failing run is logged with its code and tried again next time', async () => {
    const logged: { msg: string; o: object }[] = [];
    let calls = 0;
    const schedule = new AuditArchiveSchedule({
      everyMs: 60_000,
      keepOnlineMs: 60_000,
      archive: () => {
        calls++;
        return Promise.reject(Object.assign(new Error('disk full at /secret/path'), { code: 'ENOSPC' }));
      },
      log: { info: (o, msg) => logged.push({ o, msg }), warn: (o, msg) => logged.push({ o, msg }) },
    });
    await schedule.runOnce();
    await schedule.runOnce();
    expect(calls).toBe(2);
    expect(logged).toEqual([
      { msg: 'audit archive run failed', o: { code: 'ENOSPC' } },
      { msg: 'audit archive run failed', o: { code: 'ENOSPC' } },
    ]);
  });

  describe('paced runs', () => {
    const HOUR = 3_600_000;
    /** A schedule whose runs spread over an hour: without hurry or stop, a run would outlast the test. */
    const paced = (logged: { msg: string; o: object }[]) =>
      new AuditArchiveSchedule({
        everyMs: 2 * HOUR,
        keepOnlineMs: 60_000,
        spreadMs: HOUR,
        archive: (before, options) => s.node.services().archiveAudit(before, options),
        log: { info: (o, msg) => logged.push({ o, msg }), warn: (o, msg) => logged.push({ o, msg }) },
        // Everything recorded so far is older than keep_online.
        now: () => Date.now() + 120_000,
      });
    const archiveFiles = () => readdirSync(archiveDir).filter((n) => n.endsWith('.jsonl.gz'));
    const more = async (n: number) => {
      for (let i = 0; i < n; i++) await s.call({ method: 'GET', url: '/v1/audit/tail?n=1' });
    };

    it('stopping (shutdown) ends a paced run at its next batch, not at the end of its pace; nothing is lost', async () => {
      await more(12);
      const before = archiveFiles();
      const logged: { msg: string; o: object }[] = [];
      const schedule = paced(logged);
      const run = schedule.runOnce();
      await new Promise((r) => setTimeout(r, 100));
      await schedule.stop();
      await run;
      expect(logged).toEqual([{ msg: 'audit archive run stopped', o: {} }]);
      // Stopped while writing: no new archive, and the chain still verifies.
      expect(archiveFiles()).toEqual(before);
      expect((await s.call({ method: 'GET', url: '/v1/audit/verify' })).json()).toMatchObject({ ok: true });
    });

    it('the disk guard hurries a paced run in progress; an operator run is not held for its pace', async () => {
      await more(12);
      const logged: { msg: string; o: object }[] = [];
      const schedule = paced(logged);
      const run = schedule.runOnce();
      await new Promise((r) => setTimeout(r, 100));
      // The disk guard's call joins the run in progress and drops its pace.
      await schedule.runOnce({ hurry: true });
      await run;
      expect(logged).toMatchObject([{ msg: 'audit archived' }]);

      // A paced run in progress, then an operator's run (no pace): the paced one hurries, both finish.
      await more(12);
      const second = paced(logged);
      const scheduled = second.runOnce();
      await new Promise((r) => setTimeout(r, 100));
      const operator = await s.node.services().archiveAudit(new Date(Date.now() + 120_000));
      await scheduled;
      expect(logged).toMatchObject([{ msg: 'audit archived' }, { msg: 'audit archived' }]);
      expect(operator.busy).toBe(undefined);
      expect((await s.call({ method: 'GET', url: '/v1/audit/verify' })).json()).toMatchObject({ ok: true });
      await second.stop();
    });

    it('an operator run hurries a paced run still waiting its turn behind another run', async () => {
      await more(12);
      const services = s.node.services();
      const everything = new Date(Date.now() + 120_000);
      const first = services.archiveAudit(everything);
      const pace = new AuditArchivePace(HOUR);
      const hurry = vi.spyOn(pace, 'hurry');
      const queued = services.archiveAudit(everything, { pace });
      expect(hurry).not.toHaveBeenCalled();
      const operator = services.archiveAudit(everything);
      expect(hurry).toHaveBeenCalledTimes(1);
      // All three finish (a paced run left at its pace would outlast the test).
      await Promise.all([first, queued, operator]);
      expect((await s.call({ method: 'GET', url: '/v1/audit/verify' })).json()).toMatchObject({ ok: true });
    });
  });
});
