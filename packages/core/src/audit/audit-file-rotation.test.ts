import { copyFile, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestEvent, testSigner } from '../test-support/audit-fixtures.js';
import { MemoryAuditStore } from '../test-support/memory-audit-store.js';
import type { AuditSigner } from './audit-checkpoint.js';
import { AuditFileLineReader, parseAuditFileLine } from './audit-compact-line.js';
import { AUDIT_ANCHOR_UNLINKED, parseAuditFileAnchorLine } from './audit-file-anchor.js';
import { type AuditFileRotation, rotatedAuditFileName } from './audit-file-rotation.js';
import { AuditFileSink, type AuditFileSinkOptions } from './audit-file-sink.js';
import { verifyAuditFile } from './audit-file-verify.js';
import { verifyAuditFiles } from './audit-files-verify.js';
import { formatAuditRecordLine } from './audit-line.js';
import { AuditLog } from './audit-log.js';
import { verifyAudit } from './audit-verify.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-audit-rotation-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const EVERY = 10;

interface Rig {
  store: MemoryAuditStore;
  path: string;
  signer: AuditSigner;
  publicKeys: ReturnType<typeof testSigner>['publicKeys'];
  clock: { now: number };
  rotated: string[];
}

function rig(): Rig {
  const { signer, publicKeys } = testSigner();
  return {
    store: new MemoryAuditStore(),
    path: join(dir, 'audit.jsonl'),
    signer,
    publicKeys,
    clock: { now: Date.parse('2030-01-01T00:00:00.000Z') },
    rotated: [],
  };
}

async function openLog(r: Rig, rotation?: AuditFileRotation, extra: Partial<AuditFileSinkOptions> = {}) {
  const now = () => new Date(r.clock.now);
  const sink = await AuditFileSink.open({
    path: r.path,
    signer: r.signer,
    now,
    onRotate: (e) => {
      if (e.rotatedTo) r.rotated.push(e.rotatedTo);
    },
    ...(rotation ? { rotation } : {}),
    ...extra,
  });
  const log = await AuditLog.open({ store: r.store, signer: r.signer, checkpointEvery: EVERY, sinks: [sink], now });
  return { log, sink };
}

async function recordMany(log: AuditLog, from: number, count: number) {
  for (let i = from; i < from + count; i++) await log.record(requestEvent(i));
}

/** The rotated files in name order, then the current file: the order a shell glob gives. */
async function filesInOrder(r: Rig): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => /^audit-\d{8}T\d{6}Z-\d{6}\.jsonl$/.test(n)).sort();
  return [...names.map((n) => join(dir, n)), r.path];
}

/**
 * A record line with one digit of its event changed: the same
 * length, through the line codec, so it does not depend on the stored form.
 */
function editRecordLine(line: string): string {
  const parsed = parseAuditFileLine(line);
  if (parsed?.kind === 'compact') {
    // A compact line: the event's time (a number of fixed width) changed in its last digit.
    const value = JSON.parse(line) as { e: { t: number } };
    const t = String(value.e.t);
    value.e.t = Number(`${t.slice(0, -1)}${t.endsWith('7') ? '8' : '7'}`);
    return JSON.stringify(value);
  }
  if (parsed?.kind !== 'record') throw new Error('not a record line');
  const { event } = parsed.record;
  const at = event.search(/[0-9]/);
  const flipped = `${event.slice(0, at)}${event[at] === '7' ? '8' : '7'}${event.slice(at + 1)}`;
  return formatAuditRecordLine({ ...parsed.record, event: flipped });
}

/** The index of the `nth` (0-based) record line (full or compact) of a file's lines. */
function recordLineIndex(lines: readonly string[], nth: number): number {
  let seen = 0;
  for (const [i, line] of lines.entries()) {
    const kind = parseAuditFileLine(line)?.kind;
    if (kind === 'record' || kind === 'compact') {
      if (seen === nth) return i;
      seen++;
    }
  }
  throw new Error('no such record line');
}

async function seqsIn(paths: readonly string[]): Promise<number[]> {
  const seqs: number[] = [];
  for (const p of paths) {
    const reader = new AuditFileLineReader();
    for (const line of (await readFile(p, 'utf8')).split('\n')) {
      const fileLine = parseAuditFileLine(line);
      const parsed = fileLine && reader.read(fileLine);
      if (parsed?.kind === 'record') seqs.push(parsed.record.seq);
    }
  }
  return seqs;
}

/** A log rotated by size into several files, closed. */
async function rotatedFiles() {
  const r = rig();
  const { log } = await openLog(r, { maxBytes: 6_000 });
  await recordMany(log, 1, 100);
  await log.close();
  return { r, files: await filesInOrder(r) };
}

describe('audit file rotation', () => {
  it('by size: files named audit-<time>-<number>.jsonl, each after the first anchored, verify as one sequence with no record lost or doubled', async () => {
    const { r, files } = await rotatedFiles();
    expect(files.length).toBeGreaterThanOrEqual(4);
    expect(r.rotated).toEqual(files.slice(0, -1));
    expect(await seqsIn(files)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    for (const [i, f] of files.entries()) {
      const first = (await readFile(f, 'utf8')).split('\n')[0]!;
      const anchor = parseAuditFileAnchorLine(first);
      if (i === 0) expect(anchor).toBeUndefined();
      else expect(anchor).toMatchObject({ file: i, prevFileDigest: expect.not.stringMatching(AUDIT_ANCHOR_UNLINKED) });
      expect((await stat(f)).mode & 0o777).toBe(0o600);
      // Each file verifies on its own: the first from genesis, the others from their anchor.
      expect(await verifyAuditFile(f, { publicKeys: r.publicKeys })).toMatchObject({ ok: true });
    }
    expect(await verifyAuditFiles(files, { publicKeys: r.publicKeys })).toMatchObject({
      ok: true,
      events: 100,
      lastSeq: 100,
      files: files.length,
      unlinkedFiles: 0,
    });
    expect(await verifyAudit(r.store, { publicKeys: r.publicKeys })).toMatchObject({ ok: true, events: 100 });
  });

  it('the rotated name keeps the base name and extension and sorts by number', () => {
    const at = new Date('2026-12-04T16:27:00.123Z');
    expect(rotatedAuditFileName('/var/lib/custos/audit.jsonl', at, 3)).toBe(
      '/var/lib/custos/audit-20261204T162700Z-000003.jsonl',
    );
  });

  it('by time: a file older than rotation.everyMs is rotated at the next checkpoint', async () => {
    const r = rig();
    const { log } = await openLog(r, { everyMs: 24 * 3_600_000 });
    await recordMany(log, 1, 25);
    expect(r.rotated).toEqual([]);
    r.clock.now += 25 * 3_600_000;
    await recordMany(log, 26, 10);
    await log.close();
    expect(r.rotated).toHaveLength(1);
    const files = await filesInOrder(r);
    expect(files).toHaveLength(2);
    expect(await verifyAuditFiles(files, { publicKeys: r.publicKeys })).toMatchObject({ ok: true, events: 35 });
  });

  it('reopen after logrotate renamed the file: a new file at the path, anchored to the renamed one', async () => {
    const r = rig();
    const { log, sink } = await openLog(r);
    await recordMany(log, 1, 15);
    // Not renamed: reopen does nothing.
    await sink.reopen();
    expect(await readdir(dir)).toEqual(['audit.jsonl']);
    await rename(r.path, `${r.path}.1`);
    await sink.reopen();
    // Records 11..15 were not sealed yet: they stay in the renamed file until the next checkpoint.
    await log.checkpoint();
    await recordMany(log, 16, 12);
    await log.close();
    const anchor = parseAuditFileAnchorLine((await readFile(r.path, 'utf8')).split('\n')[0]!);
    expect(anchor).toMatchObject({ file: 1, checkpoint: { seq: 15 } });
    expect(await seqsIn([`${r.path}.1`, r.path])).toEqual(Array.from({ length: 27 }, (_, i) => i + 1));
    expect(await verifyAuditFiles([`${r.path}.1`, r.path], { publicKeys: r.publicKeys })).toMatchObject({
      ok: true,
      events: 27,
      files: 2,
    });
  });

  it('reopen replaces the empty file logrotate `create` leaves', async () => {
    const r = rig();
    const { log, sink } = await openLog(r);
    await recordMany(log, 1, 10);
    await rename(r.path, `${r.path}.1`);
    await writeFile(r.path, '', { mode: 0o644 });
    await sink.reopen();
    await recordMany(log, 11, 5);
    await log.close();
    expect((await stat(r.path)).mode & 0o777).toBe(0o600);
    expect(await verifyAuditFiles([`${r.path}.1`, r.path], { publicKeys: r.publicKeys })).toMatchObject({
      ok: true,
      events: 15,
    });
  });

  it('reopen never replaces a non-empty file someone else put at the path; writing goes on to the open file', async () => {
    const r = rig();
    const { log, sink } = await openLog(r);
    await recordMany(log, 1, 10);
    await rename(r.path, `${r.path}.1`);
    await writeFile(r.path, 'not ours\n');
    await expect(sink.reopen()).rejects.toThrow(/non-empty file is in the audit file's place/);
    await recordMany(log, 11, 5);
    await log.close();
    expect(await readFile(r.path, 'utf8')).toBe('not ours\n');
    expect(await readdir(dir)).not.toContain('audit.jsonl.next');
    expect(await seqsIn([`${r.path}.1`])).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
  });

  it('rotateSoon (the disk guard) rotates at the next checkpoint whatever the limits', async () => {
    const r = rig();
    const { log, sink } = await openLog(r);
    await recordMany(log, 1, 5);
    sink.rotateSoon();
    await recordMany(log, 6, 10);
    await log.close();
    expect(r.rotated).toHaveLength(1);
    expect(sink.fileNumber).toBe(1);
    expect(await verifyAuditFiles(await filesInOrder(r), { publicKeys: r.publicKeys })).toMatchObject({ ok: true });
  });

  it('an emptied file restarts at the last checkpoint with an unlinked anchor; the chain still links it', async () => {
    const r = rig();
    const first = await openLog(r);
    await recordMany(first.log, 1, 12);
    await first.log.close();
    await rename(r.path, `${r.path}.old`);
    const second = await openLog(r);
    await recordMany(second.log, 13, 5);
    await second.log.close();
    const anchor = parseAuditFileAnchorLine((await readFile(r.path, 'utf8')).split('\n')[0]!);
    expect(anchor).toMatchObject({ checkpoint: { seq: 12 }, prevFileDigest: AUDIT_ANCHOR_UNLINKED });
    expect(await verifyAuditFile(r.path, { publicKeys: r.publicKeys })).toMatchObject({ ok: true, events: 5 });
    expect(await verifyAuditFiles([`${r.path}.old`, r.path], { publicKeys: r.publicKeys })).toMatchObject({
      ok: true,
      events: 17,
      unlinkedFiles: 1,
    });
  });

  it.each(['anchor-written', 'renamed'] as const)(
    'a rotation cut off after %s is finished or undone at the next open, nothing lost',
    async (step) => {
      const r = rig();
      let cut = false;
      const { log } = await openLog(
        r,
        { maxBytes: 1 },
        {
          rotationStep: (at) => {
            if (at === step && !cut) {
              cut = true;
              throw new Error('crash here');
            }
          },
        },
      );
      await recordMany(log, 1, 10);
      await log.close();
      expect(cut).toBe(true);
      expect((await readdir(dir)).sort()).toContain('audit.jsonl.next');
      const again = await openLog(r, { maxBytes: 1 });
      expect((await readdir(dir)).sort()).not.toContain('audit.jsonl.next');
      await recordMany(again.log, 11, 10);
      await again.log.close();
      const files = await filesInOrder(r);
      expect(await seqsIn(files)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(await verifyAuditFiles(files, { publicKeys: r.publicKeys })).toMatchObject({ ok: true, events: 20 });
    },
  );
});

describe('verifying rotated files: what an attacker with file access does shows, naming the file', () => {
  it('a missing file in the middle → file-missing between its neighbours', async () => {
    const { r, files } = await rotatedFiles();
    const without = files.filter((_, i) => i !== 1);
    expect(await verifyAuditFiles(without, { publicKeys: r.publicKeys })).toMatchObject({
      ok: false,
      problem: 'file-missing',
      file: files[2],
      detail: expect.stringMatching(
        /1 file \(number 1\) missing between audit-.*-000000\.jsonl and audit-.*-000002\.jsonl/,
      ),
    });
  });

  it('older files removed (archived): the rest verifies from the first one’s anchor', async () => {
    const { r, files } = await rotatedFiles();
    expect(await verifyAuditFiles(files.slice(2), { publicKeys: r.publicKeys })).toMatchObject({ ok: true });
  });

  it('two files swapped → file-reordered', async () => {
    const { r, files } = await rotatedFiles();
    const swapped = [files[0]!, files[2]!, files[1]!, ...files.slice(3)];
    expect(await verifyAuditFiles(swapped, { publicKeys: r.publicKeys })).toMatchObject({
      ok: false,
      problem: 'file-reordered',
      file: files[2],
      detail: expect.stringMatching(/-000002\.jsonl \(file 2\) is given before audit-.*-000001\.jsonl \(file 1\)/),
    });
    const lastFirst = [files.at(-1)!, ...files.slice(0, -1)];
    expect(await verifyAuditFiles(lastFirst, { publicKeys: r.publicKeys })).toMatchObject({
      ok: false,
      problem: 'anchor-missing',
      file: files[0],
    });
  });

  it('a rotated file edited (same length) → file-altered, naming it via its successor; alone it fails at the line', async () => {
    const { r, files } = await rotatedFiles();
    const text = await readFile(files[1]!, 'utf8');
    const lines = text.split('\n');
    const at = recordLineIndex(lines, 0);
    lines[at] = editRecordLine(lines[at]!);
    const edited = lines.join('\n');
    expect(edited.length).toBe(text.length);
    await writeFile(files[1]!, edited);
    expect(await verifyAuditFiles(files, { publicKeys: r.publicKeys })).toMatchObject({
      ok: false,
      problem: 'file-altered',
      file: files[2],
      detail: expect.stringMatching(/audit-.*-000001\.jsonl changed after rotation \(edited: same size/),
    });
    expect(await verifyAuditFile(files[1]!, { publicKeys: r.publicKeys })).toMatchObject({
      ok: false,
      problem: 'altered',
      file: files[1],
      line: at + 1,
    });
  });

  it('a rotated file truncated → file-altered (truncated)', async () => {
    const { r, files } = await rotatedFiles();
    const lines = (await readFile(files[1]!, 'utf8')).split('\n');
    await writeFile(files[1]!, `${lines.slice(0, -3).join('\n')}\n`);
    expect(await verifyAuditFiles(files, { publicKeys: r.publicKeys })).toMatchObject({
      ok: false,
      problem: 'file-altered',
      detail: expect.stringContaining('truncated'),
    });
  });

  it('the last file edited (no successor pins it) → altered at its line', async () => {
    const { r, files } = await rotatedFiles();
    const withRecords = [];
    for (const f of files) if ((await seqsIn([f])).length > 0) withRecords.push(f);
    const last = withRecords.at(-1)!;
    const chosen = files.slice(0, files.indexOf(last) + 1);
    const lines = (await readFile(last, 'utf8')).split('\n');
    const at = recordLineIndex(lines, 1);
    lines[at] = editRecordLine(lines[at]!);
    await writeFile(last, lines.join('\n'));
    expect(await verifyAuditFiles(chosen, { publicKeys: r.publicKeys })).toMatchObject({
      ok: false,
      problem: 'altered',
      file: last,
      line: at + 1,
    });
  });

  it('a forged anchor (edited field) → anchor-invalid; an anchor by an unknown key → unknown-key', async () => {
    const { r, files } = await rotatedFiles();
    const copy = join(dir, 'copy.jsonl');
    await copyFile(files[2]!, copy);
    const lines = (await readFile(copy, 'utf8')).split('\n');
    lines[0] = lines[0]!.replace('"file":2', '"file":1');
    await writeFile(copy, lines.join('\n'));
    expect(await verifyAuditFiles([files[0]!, files[1]!, copy], { publicKeys: r.publicKeys })).toMatchObject({
      ok: false,
      problem: 'anchor-invalid',
      file: copy,
      line: 1,
    });
    expect(await verifyAuditFiles(files, { publicKeys: testSigner().publicKeys })).toMatchObject({
      ok: false,
      problem: 'unknown-key',
    });
  });

  it('a file that is not a rotated successor given in the middle → anchor-missing', async () => {
    const { r, files } = await rotatedFiles();
    expect(await verifyAuditFiles([files[1]!, files[0]!], { publicKeys: r.publicKeys })).toMatchObject({
      ok: false,
      problem: 'anchor-missing',
      file: files[0],
    });
  });
});
