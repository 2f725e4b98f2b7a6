import { mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestEvent, testSigner } from '../test-support/audit-fixtures.js';
import { MemoryAuditStore } from '../test-support/memory-audit-store.js';
import { verifyAuditArchives } from './audit-archive-verify.js';
import { type AuditArchivePredecessor, writeAuditArchive } from './audit-archive-write.js';
import { AuditLog } from './audit-log.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-audit-archive-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const EVERY = 10;
const START = Date.parse('2030-01-01T00:00:00.000Z');

/** A log of `count` records, one per second, checkpointed every {@link EVERY}. */
async function logOf(count: number) {
  const { signer, publicKeys } = testSigner();
  const store = new MemoryAuditStore();
  const clock = { now: START };
  const log = await AuditLog.open({ store, signer, checkpointEvery: EVERY, sinks: [], now: () => new Date(clock.now) });
  for (let i = 1; i <= count; i++) {
    clock.now += 1000;
    await log.record(requestEvent(i));
  }
  await log.close();
  return { store, signer, publicKeys };
}

/** Archives up to `seconds` after START, after `previous`. */
async function archive(
  rig: Awaited<ReturnType<typeof logOf>>,
  name: string,
  seconds: number,
  previous?: AuditArchivePredecessor,
) {
  const path = join(dir, name);
  const written = await writeAuditArchive({
    store: rig.store,
    signer: rig.signer,
    path,
    before: new Date(START + seconds * 1000 + 500),
    batchSize: 7,
    ...(previous ? { previous } : {}),
  });
  if (!written) throw new Error('nothing archived');
  return {
    path,
    written,
    next: { archive: written.manifest.archive, checkpoint: written.checkpoint, digest: written.digest },
  };
}

/** Three archives (records 1–20, 21–40, 41–60) of a log of 75 records. */
async function threeArchives() {
  const rig = await logOf(75);
  const a1 = await archive(rig, 'a1.jsonl.gz', 25);
  const a2 = await archive(rig, 'a2.jsonl.gz', 45, a1.next);
  const a3 = await archive(rig, 'a3.jsonl.gz', 65, a2.next);
  return { rig, paths: [a1.path, a2.path, a3.path], a1, a2, a3 };
}

async function editContent(path: string, edit: (lines: string[]) => void): Promise<void> {
  const lines = gunzipSync(await readFile(path))
    .toString('utf8')
    .split('\n');
  edit(lines);
  await writeFile(path, gzipSync(lines.join('\n')));
}

describe('audit archives', () => {
  it('an archive ends at the last checkpoint before the time; archives chain, and verify with the online tail as one chain', async () => {
    const { rig, paths, a1, a2, a3 } = await threeArchives();
    expect(a1.written.manifest).toMatchObject({ archive: 1, firstSeq: 1, lastSeq: 20, records: 20 });
    expect(a2.written.manifest).toMatchObject({
      archive: 2,
      firstSeq: 21,
      lastSeq: 40,
      prevArchiveDigest: a1.written.digest,
    });
    expect(a3.written.manifest).toMatchObject({ archive: 3, firstSeq: 41, lastSeq: 60 });
    expect(a1.written.manifest.keyIds).toEqual([rig.signer.keyId]);

    expect(await verifyAuditArchives(paths, { publicKeys: rig.publicKeys })).toMatchObject({
      ok: true,
      archives: 3,
      archivedEvents: 60,
      lastSeq: 60,
    });
    // Archives plus the online records after them: 75 events, one chain.
    expect(await verifyAuditArchives(paths, { publicKeys: rig.publicKeys, online: rig.store })).toMatchObject({
      ok: true,
      events: 75,
      archivedEvents: 60,
      lastSeq: 75,
    });
    // Later archives alone (older ones given up): verified from the first one's anchor.
    expect(await verifyAuditArchives(paths.slice(1), { publicKeys: rig.publicKeys })).toMatchObject({
      ok: true,
      archivedEvents: 40,
    });
  });

  it('nothing sealed before the time → undefined, no file', async () => {
    const rig = await logOf(5);
    const path = join(dir, 'none.jsonl.gz');
    expect(await writeAuditArchive({ store: rig.store, signer: rig.signer, path, before: new Date(START) })).toBe(
      undefined,
    );
    await expect(readFile(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a missing archive → archive-missing, naming the numbers and the records not given', async () => {
    const { rig, paths } = await threeArchives();
    expect(await verifyAuditArchives([paths[0]!, paths[2]!], { publicKeys: rig.publicKeys })).toMatchObject({
      ok: false,
      problem: 'archive-missing',
      file: paths[2],
      detail: expect.stringContaining(
        '1 archive (number 2) missing between a1.jsonl.gz and a3.jsonl.gz: records 21–40',
      ),
    });
  });

  it('a deleted archive file → archive-missing naming it', async () => {
    const { rig, paths } = await threeArchives();
    await unlink(paths[1]!);
    expect(await verifyAuditArchives(paths, { publicKeys: rig.publicKeys })).toMatchObject({
      ok: false,
      problem: 'archive-missing',
      file: paths[1],
    });
  });

  it('reordered archives → archive-reordered', async () => {
    const { rig, paths } = await threeArchives();
    expect(await verifyAuditArchives([paths[1]!, paths[0]!, paths[2]!], { publicKeys: rig.publicKeys })).toMatchObject({
      ok: false,
      problem: 'archive-reordered',
      file: paths[0],
    });
    expect(await verifyAuditArchives([paths[0]!, paths[2]!, paths[1]!], { publicKeys: rig.publicKeys })).toMatchObject({
      ok: false,
      problem: 'archive-reordered',
      file: paths[2],
    });
  });

  it('an edited record (recompressed) → altered at its line; the successor says its predecessor changed', async () => {
    const { rig, paths } = await threeArchives();
    let at = 0;
    await editContent(paths[1]!, (lines) => {
      at = lines.findIndex((l) => l.includes('"seq":25,'));
      lines[at] = lines[at]!.replace('req-25', 'req-99');
    });
    // Alone (the last given), the chain points at the line.
    expect(await verifyAuditArchives(paths.slice(0, 2), { publicKeys: rig.publicKeys })).toMatchObject({
      ok: false,
      problem: 'altered',
      seq: 25,
      file: paths[1],
      line: at + 1,
    });
    // With its successor, the pinned SHA-256 names it first.
    expect(await verifyAuditArchives(paths, { publicKeys: rig.publicKeys })).toMatchObject({
      ok: false,
      problem: 'archive-altered',
      file: paths[2],
      detail: expect.stringContaining('a2.jsonl.gz is not the file a3.jsonl.gz follows'),
    });
  });

  it('an edit the chain cannot see (a checkpoint line reformatted) → archive-altered by the signed content digest', async () => {
    const { rig, paths } = await threeArchives();
    await editContent(paths[2]!, (lines) => {
      const i = lines.findIndex((l) => l.includes('"kind":"checkpoint"'));
      lines[i] = JSON.stringify(JSON.parse(lines[i]!), null, 0).replace('{', '{ ');
    });
    expect(await verifyAuditArchives(paths, { publicKeys: rig.publicKeys })).toMatchObject({
      ok: false,
      problem: 'archive-altered',
      file: paths[2],
      detail: expect.stringContaining('a3.jsonl.gz was edited after archiving'),
    });
  });

  it('compressed bytes edited → archive-unreadable; truncated → archive-truncated, naming the archive', async () => {
    const { rig, paths } = await threeArchives();
    const bytes = await readFile(paths[1]!);
    const edited = Buffer.from(bytes);
    edited[Math.floor(bytes.length / 2)]! ^= 0xff;
    await writeFile(paths[1]!, edited);
    const report = await verifyAuditArchives(paths, { publicKeys: rig.publicKeys });
    expect(report).toMatchObject({ ok: false, file: paths[1] });
    expect(['archive-unreadable', 'archive-truncated']).toContain(!report.ok && report.problem);

    await writeFile(paths[1]!, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    expect(await verifyAuditArchives(paths, { publicKeys: rig.publicKeys })).toMatchObject({
      ok: false,
      problem: 'archive-truncated',
      file: paths[1],
    });

    // Cut at a line boundary and recompressed: no signed manifest at the end.
    await writeFile(paths[1]!, bytes);
    await editContent(paths[1]!, (lines) => lines.splice(10));
    expect(await verifyAuditArchives(paths.slice(0, 2), { publicKeys: rig.publicKeys })).toMatchObject({
      ok: false,
      problem: 'archive-truncated',
      file: paths[1],
      detail: expect.stringContaining('without its signed manifest'),
    });
  });

  it('a forged manifest (records dropped, manifest rewritten) → manifest-invalid; another key under the same id → bad-signature; a key id not trusted → unknown-key', async () => {
    const { rig, paths } = await threeArchives();
    await editContent(paths[2]!, (lines) => {
      const m = lines.findIndex((l) => l.includes('"kind":"archive-manifest"'));
      lines[m] = lines[m]!.replace(/"records":\d+/, '"records":19');
    });
    expect(await verifyAuditArchives(paths, { publicKeys: rig.publicKeys })).toMatchObject({
      ok: false,
      problem: 'manifest-invalid',
      file: paths[2],
    });
    const other = testSigner(rig.signer.keyId);
    expect(await verifyAuditArchives(paths.slice(0, 1), { publicKeys: other.publicKeys })).toMatchObject({
      ok: false,
      problem: 'bad-signature',
      file: paths[0],
    });
    const stranger = testSigner('not-this-node');
    expect(await verifyAuditArchives(paths.slice(0, 1), { publicKeys: stranger.publicKeys })).toMatchObject({
      ok: false,
      problem: 'unknown-key',
      file: paths[0],
    });
  });

  it('an online tail edited after archiving → altered in the tail, no archive blamed', async () => {
    const { rig, paths } = await threeArchives();
    const r = rig.store.records[65]!;
    rig.store.records[65] = { ...r, event: r.event.replace('req-66', 'req-67') };
    const report = await verifyAuditArchives(paths, { publicKeys: rig.publicKeys, online: rig.store });
    expect(report).toMatchObject({ ok: false, problem: 'altered', seq: 66 });
    expect(report).not.toHaveProperty('file');
  });

  it('a write that fails after a batch (stopped, lease lost) leaves no file and no stray write on the closed file', async () => {
    // Enough records that gzip has output queued for the file when the batch hook throws.
    const rig = await logOf(6000);
    for (let attempt = 0; attempt < 3; attempt++) {
      await expect(
        writeAuditArchive({
          store: rig.store,
          signer: rig.signer,
          path: join(dir, 'a.jsonl.gz'),
          before: new Date(START + 7000 * 1000),
          onBatch: async () => {
            throw new Error('stopped');
          },
        }),
      ).rejects.toThrow('stopped');
    }
    // A write still queued when the file closed would surface here as an unhandled rejection (EBADF), failing the run.
    await new Promise((r) => setTimeout(r, 50));
    expect(await readdir(dir)).toEqual([]);
  });
});
