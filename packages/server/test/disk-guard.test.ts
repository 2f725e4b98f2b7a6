import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditArchiveSchedule } from '../src/audit-archive-schedule.js';
import { DiskGuard } from '../src/disk-guard.js';
import { resolveServerConfig } from '../src/server-config.js';
import { startTestServer } from './test-server.js';

// The guard reads the real filesystem (fs.statfs): a 2 MiB tmpfs that the
// test fills past the threshold, as a busy node's audit trail would.
const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  const why = 'disk guard test needs root to mount a tmpfs';
  if (process.env.CI === 'true') throw new Error(`${why}, and CI=true forbids skipping it`);
  console.warn(`\n!!! SKIPPED: ${why} !!!\n`);
}

function recorder() {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  return {
    lines,
    log: {
      warn: (fields: Record<string, unknown>, message: string) => lines.push({ level: 'warn', fields, message }),
      info: (fields: Record<string, unknown>, message: string) => lines.push({ level: 'info', fields, message }),
    },
  };
}

describe.runIf(isRoot)('disk guard on a real small filesystem', () => {
  const mnt = mkdtempSync(join(tmpdir(), 'custos-disk-guard-'));
  beforeAll(() => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  });
  afterAll(() => {
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  it('crossing the threshold warns (counts only) and rotates early once; recovering is logged', async () => {
    const { lines, log } = recorder();
    let rotations = 0;
    const guard = new DiskGuard({
      dir: mnt,
      warnFreeBytes: 1024 * 1024,
      checkEveryMs: 1_000,
      windowMs: 60_000,
      action: 'rotate-and-warn',
      rotateAudit: () => rotations++,
      log,
    });
    const before = await guard.check();
    expect(before).toMatchObject({ low: false, totalBytes: 2 * 1024 * 1024 });
    expect(before.freeBytes).toBeGreaterThan(1024 * 1024);

    const fill = join(mnt, 'filler');
    writeFileSync(fill, Buffer.alloc(1536 * 1024));
    const low = await guard.check();
    expect(low.low).toBe(true);
    expect(low.freeBytes).toBeLessThan(1024 * 1024);
    expect(guard.low).toBe(true);
    expect(rotations).toBe(1);
    expect(lines).toEqual([
      {
        level: 'warn',
        fields: expect.objectContaining({ free_bytes: low.freeBytes, action: 'rotate-and-warn' }),
        message: 'disk space for the audit trail is low',
      },
    ]);
    // Still low: no second rotation, no warning on every check.
    await guard.check();
    expect(rotations).toBe(1);
    expect(lines).toHaveLength(1);
    // Nothing logged names the directory.
    expect(JSON.stringify(lines)).not.toContain(mnt);

    unlinkSync(fill);
    expect((await guard.check()).low).toBe(false);
    expect(lines.at(-1)).toMatchObject({
      level: 'info',
      message: 'disk space for the audit trail is back above the threshold',
    });
  });

  it('archive-and-warn runs the scheduled archival once per crossing, before requests are refused', async () => {
    const archiveDir = join(mnt, 'archive');
    const s = await startTestServer('sqlite', { audit: { archiveDir, checkpointEvery: 5 } });
    try {
      for (let i = 0; i < 12; i++) await s.call({ method: 'GET', url: '/v1/audit/tail?n=1' });
      const { lines, log } = recorder();
      // The server's wiring (start-server.ts): the schedule's run (before =
      // now − keep_online), paced as configured, which the disk guard hurries
      // — paced over most of an hour, this test would time out otherwise.
      // Its clock is two minutes ahead, so what was just written is older than keep_online.
      const schedule = new AuditArchiveSchedule({
        everyMs: 3_600_000,
        keepOnlineMs: 60_000,
        spreadMs: 2_880_000,
        archive: (before, options) => s.node.services().archiveAudit(before, options),
        log,
        now: () => Date.now() + 120_000,
      });
      let runs = 0;
      let rotations = 0;
      const guard = new DiskGuard({
        dir: mnt,
        warnFreeBytes: 1024 * 1024,
        checkEveryMs: 1_000,
        windowMs: 60_000,
        action: 'archive-and-warn',
        rotateAudit: () => rotations++,
        archiveAudit: () => {
          runs++;
          return schedule.runOnce({ hurry: true });
        },
        log,
      });
      expect((await guard.check()).low).toBe(false);
      await guard.settled();
      expect(runs).toBe(0);
      const fill = join(mnt, 'filler');
      writeFileSync(fill, Buffer.alloc(1536 * 1024));
      try {
        expect((await guard.check()).low).toBe(true);
        await guard.settled();
        expect(runs).toBe(1);
        expect(rotations).toBe(1);
        // Archived early: the records left the database, into a signed archive.
        expect(readdirSync(archiveDir)).toEqual(['audit-archive-000001.jsonl.gz']);
        const archived = lines.find((l) => l.message === 'audit archived');
        expect(archived?.fields).toMatchObject({ archive: 1, first_seq: 1 });
        const lastSeq = (archived?.fields as { last_seq?: number } | undefined)?.last_seq;
        expect(lastSeq).toBeGreaterThan(5);
        const verify = await s.call({ method: 'GET', url: '/v1/audit/verify' });
        expect(verify.json()).toMatchObject({ ok: true, archivedThrough: lastSeq });
        // Counts only: no path in the log.
        expect(JSON.stringify(lines)).not.toContain(mnt);
        // Still low: no second run for the same crossing.
        await guard.check();
        await guard.settled();
        expect(runs).toBe(1);
      } finally {
        unlinkSync(fill);
      }
      expect((await guard.check()).low).toBe(false);
      await schedule.stop();
    } finally {
      await s.close();
    }
  });

  it('by percentage too; `warn` never rotates', async () => {
    const { log } = recorder();
    let rotations = 0;
    const guard = new DiskGuard({
      dir: mnt,
      warnFreePercent: 50,
      checkEveryMs: 1_000,
      windowMs: 60_000,
      action: 'warn',
      rotateAudit: () => rotations++,
      log,
    });
    expect((await guard.check()).low).toBe(false);
    const fill = join(mnt, 'filler');
    writeFileSync(fill, Buffer.alloc(1200 * 1024));
    try {
      expect(await guard.check()).toMatchObject({ low: true });
      expect(rotations).toBe(0);
    } finally {
      unlinkSync(fill);
    }
  });
});

describe('disk guard growth rate', () => {
  it('is the audit bytes per minute over the sliding window, and how long the free space lasts at it', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    let bytes = 0;
    const guard = new DiskGuard({
      dir: tmpdir(),
      warnFreeBytes: 1,
      checkEveryMs: 30_000,
      windowMs: 120_000,
      action: 'warn',
      auditBytes: () => bytes,
      log: recorder().log,
      now: () => now,
    });
    expect((await guard.check()).auditGrowthBytesPerMin).toBeUndefined();
    for (let i = 0; i < 4; i++) {
      now += 30_000;
      bytes += 3_000;
    }
    // Checked only now: the window holds t0 and now (2 minutes, 12,000 bytes).
    const steady = await guard.check();
    expect(steady.auditGrowthBytesPerMin).toBe(6_000);
    expect(steady.minutesToFull).toBe(Math.floor(steady.freeBytes / 6_000));
    // The window slides: an idle two minutes brings the rate to 0.
    now += 60_000;
    await guard.check();
    now += 60_000;
    await guard.check();
    now += 60_000;
    expect((await guard.check()).auditGrowthBytesPerMin).toBe(0);
    // A counter that went back (a new sink after unseal) restarts the window instead of going negative.
    bytes = 10;
    expect((await guard.check()).auditGrowthBytesPerMin).toBeUndefined();
  });
});

describe('audit rotation and disk guard settings', () => {
  const cfg = (audit: unknown) => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-cfg-'));
    try {
      writeFileSync(join(dir, 'c.json'), JSON.stringify({ audit }));
      return resolveServerConfig({ config: 'c.json', dev: true }, dir).audit;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('reads audit.file as a path or { path, max_bytes, rotate_every }, and audit.disk_guard', () => {
    expect(cfg({ file: { path: 'a.jsonl', max_bytes: 104857600, rotate_every: '24h' } })).toMatchObject({
      file: expect.stringMatching(/a\.jsonl$/),
      rotation: { maxBytes: 104857600, everyMs: 86_400_000 },
    });
    expect(cfg({ file: 'a.jsonl' }).rotation).toBeUndefined();
    expect(cfg({ disk_guard: { warn_free_percent: 10 } }).diskGuard).toEqual({
      warnFreePercent: 10,
      checkEveryMs: 30_000,
      windowMs: 300_000,
      action: 'rotate-and-warn',
    });
    expect(cfg({ file: null, disk_guard: { warn_free_bytes: 1e9, check_every: '10s' } }).diskGuard).toMatchObject({
      action: 'warn',
      checkEveryMs: 10_000,
    });
    // With scheduled archival, the guard archives early by default.
    expect(cfg({ archive: { every: '1h' }, disk_guard: { warn_free_percent: 10 } }).diskGuard).toMatchObject({
      action: 'archive-and-warn',
    });
  });

  it.each([
    [{ file: { max_bytes: 10 } }, /max_bytes is a number of bytes, at least 65536/],
    [{ file: { rotate_every: '1s' } }, /rotate_every is at least 1m/],
    [{ file: { size: 1 } }, /audit\.file\.size is not a setting/],
    [{ disk_guard: {} }, /needs warn_free_bytes or warn_free_percent/],
    [{ disk_guard: { warn_free_percent: 150 } }, /between 0 and 100/],
    [{ disk_guard: { warn_free_bytes: 1, action: 'delete' } }, /warn, rotate-and-warn or archive-and-warn/],
    [{ disk_guard: { warn_free_bytes: 1, action: 'archive-and-warn' } }, /archive-and-warn needs audit\.archive/],
    [{ archive: { dir: 'a' }, disk_guard: { warn_free_bytes: 1, action: 'archive-and-warn' } }, /needs audit\.archive/],
    [{ file: null, disk_guard: { warn_free_bytes: 1, action: 'rotate-and-warn' } }, /needs the audit file/],
    [{ disk_guard: { warn_free_bytes: 1, check_every: '10ms' } }, /check_every is between 1s and 1h/],
  ])('refuses %j at start', (audit, message) => {
    expect(() => cfg(audit)).toThrow(message);
  });
});
