import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuditArchivePace,
  AuditArchiveStopped,
  type AuditEventInput,
  AuditLog,
  type AuditStore,
  auditArchiveFileName,
  exportAuditSince,
  formatAuditCheckpointLine,
  formatAuditRecordLine,
  runAuditArchive,
  verifyAudit,
  verifyAuditArchives,
  verifyAuditArchivesAndFiles,
  verifyAuditFile,
} from '@custos/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestSchema, hasPostgres } from '../../../test-support/postgres.js';
import { PostgresStorage } from './postgres/postgres-storage.js';
import { SqliteStorage } from './sqlite/sqlite-storage.js';

/**
 * Archival on both databases: records archived up to a checkpoint are
 * deleted in bounded batches, the online chain verifies from the archive's
 * checkpoint, archives plus the online tail verify as one chain, and a run
 * cut off before its journal or between delete batches is undone or resumed.
 */
interface Opened {
  readonly audit: AuditStore;
  close(): Promise<void>;
  count(table: 'audit_log' | 'audit_checkpoints' | 'audit_dictionary'): Promise<number>;
}

async function sqlite(dir: string): Promise<{ open(): Promise<Opened>; cleanup(): Promise<void> }> {
  const path = join(dir, 'custos.db');
  return {
    open: async () => {
      const storage = new SqliteStorage({ path, auditDictionarySpan: DICTIONARY_SPAN });
      await storage.migrate();
      const db = (storage as unknown as { db?: { prepare(s: string): { pluck(): { get(): unknown } } } }).db;
      return {
        audit: storage.audit,
        close: () => storage.close(),
        count: async (table) => {
          const Database = (await import('better-sqlite3')).default;
          const raw = db ? undefined : new Database(path, { readonly: true });
          try {
            return Number((db ?? raw!).prepare(`SELECT count(*) FROM ${table}`).pluck().get());
          } finally {
            raw?.close();
          }
        },
      };
    },
    cleanup: async () => undefined,
  };
}

async function postgres(): Promise<{ open(): Promise<Opened>; cleanup(): Promise<void> }> {
  const schema = await createTestSchema();
  return {
    open: async () => {
      const storage = new PostgresStorage({
        connectionString: schema.url,
        schema: schema.name,
        auditDictionarySpan: DICTIONARY_SPAN,
      });
      await storage.migrate();
      const pg = (await import('pg')).default;
      return {
        audit: storage.audit,
        close: () => storage.close(),
        count: async (table) => {
          const client = new pg.Client({ connectionString: schema.url });
          await client.connect();
          try {
            const { rows } = await client.query(`SELECT count(*) AS n FROM "${schema.name}".${table}`);
            return Number(rows[0].n);
          } finally {
            await client.end();
          }
        },
      };
    },
    cleanup: () => schema.drop(),
  };
}

const EVERY = 10;
// Small, so that runs delete dictionary entries too: each task's entry goes
// once its records are archived and the span has passed (see event()).
const DICTIONARY_SPAN = 5;
const START = Date.parse('2030-01-01T00:00:00.000Z');

function event(i: number): AuditEventInput {
  return {
    type: 'request',
    request_id: `req-${i}`,
    // A task every ten events: one auth entry in the dictionary for each.
    auth: { identity: 'role:enricher', policies: ['enricher'], task_chain: [`task-${Math.floor(i / 10)}`] },
    request: {
      method: 'GET',
      route: '/v1/secrets/*',
      path: `kv/test/item-${i}`,
      action: 'read',
      source_ip: '127.0.0.1',
    },
    decision: 'allow',
    status: 200,
  };
}

const backends: Array<[string, (dir: string) => Promise<{ open(): Promise<Opened>; cleanup(): Promise<void> }>]> = [
  ['sqlite', sqlite],
];
if (hasPostgres()) backends.push(['postgres', () => postgres()]);

describe.each(backends)('audit archival (%s)', (_, make) => {
  let dir: string;
  let backend: Awaited<ReturnType<typeof make>>;
  let opened: Opened | undefined;
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const signer = { keyId: 'audit-archive-test', privateKey };
  const publicKeys = new Map([[signer.keyId, publicKey]]);
  const clock = { now: START };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-audit-archival-'));
    backend = await make(dir);
    clock.now = START;
  });
  afterEach(async () => {
    await opened?.close();
    opened = undefined;
    await backend.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  /** Opens the store and records events `from`…`to`, one a second. */
  async function record(from: number, to: number): Promise<Opened> {
    opened ??= await backend.open();
    const log = await AuditLog.open({
      store: opened.audit,
      signer,
      checkpointEvery: EVERY,
      sinks: [],
      now: () => new Date(clock.now),
    });
    for (let i = from; i <= to; i++) {
      clock.now += 1000;
      await log.record(event(i));
    }
    await log.close();
    return opened;
  }

  const at = (seconds: number) => new Date(START + seconds * 1000 + 500);
  const archives = async () => (await readdir(dir)).filter((n) => n.endsWith('.jsonl.gz')).map((n) => join(dir, n));

  it('archives up to a checkpoint, deletes in batches, and everything verifies as one chain; appends go on', async () => {
    const db = await record(1, 55);
    const entries = await db.count('audit_dictionary');
    const run = await runAuditArchive({ store: db.audit, signer, dir, before: at(25), deleteBatch: 7 });
    expect(run.written?.manifest).toMatchObject({ archive: 1, firstSeq: 1, lastSeq: 20, records: 20 });
    // Records below the anchor (19) and checkpoints below it (1) are gone; the anchor's record and checkpoint stay.
    // So are the dictionary entries only they used: each event's request entry (one path each) below 20 − the span.
    const collected = entries - (await db.count('audit_dictionary'));
    expect(collected).toBeGreaterThanOrEqual(20 - DICTIONARY_SPAN - 1);
    expect(run.deleted).toBe(19 + 1 + collected);
    expect(await db.count('audit_log')).toBe(55 - 19);
    expect(await db.audit.archiveState()).toMatchObject({
      archive: 1,
      status: 'archived',
      file: auditArchiveFileName(1),
    });

    expect(await verifyAudit(db.audit, { publicKeys })).toMatchObject({ ok: true, archivedThrough: 20, events: 35 });
    expect(await verifyAuditArchives(await archives(), { publicKeys, online: db.audit })).toMatchObject({
      ok: true,
      archives: 1,
      archivedEvents: 20,
      events: 55,
    });

    // The log goes on after archival, and a second archive (all records, up to the closing checkpoint) chains to the first.
    await record(56, 70);
    const second = await runAuditArchive({ store: db.audit, signer, dir, before: at(75), deleteBatch: 50 });
    expect(second.written?.manifest).toMatchObject({ archive: 2, firstSeq: 21, lastSeq: 70 });
    expect(await verifyAudit(db.audit, { publicKeys })).toMatchObject({ ok: true, archivedThrough: 70, lastSeq: 70 });
    expect(await verifyAuditArchives((await archives()).sort(), { publicKeys, online: db.audit })).toMatchObject({
      ok: true,
      archives: 2,
      events: 70,
    });
  });

  it('an export after archival starts at the anchor record, verifies on its own (--partial) and after the archive as one chain', async () => {
    const db = await record(1, 55);
    const run = await runAuditArchive({ store: db.audit, signer, dir, before: at(25), deleteBatch: 7 });
    expect(run.written?.manifest).toMatchObject({ lastSeq: 20 });
    // The anchor record stays online without its predecessor: its own prev_hash must still be there to read.
    const [anchor] = await db.audit.range(20, 1);
    expect(anchor?.prevHash).toMatch(/^[0-9a-f]{64}$/);

    const lines: string[] = [];
    for await (const r of exportAuditSince(db.audit, '1970-01-01T00:00:00.000Z')) lines.push(formatAuditRecordLine(r));
    for (const c of await db.audit.checkpoints()) lines.push(formatAuditCheckpointLine(c));
    const exported = join(dir, 'export.jsonl');
    await writeFile(exported, `${lines.join('\n')}\n`);
    expect(await verifyAuditFile(exported, { publicKeys, partial: true })).toMatchObject({ ok: true, lastSeq: 55 });
    const joined = await verifyAuditArchivesAndFiles(await archives(), [exported], { publicKeys });
    expect(joined, JSON.stringify(joined)).toMatchObject({
      ok: true,
      lastSeq: 55,
      archives: 1,
      archivedEvents: 20,
      events: 55,
    });

    // An export that starts later (--since) leaves records 21–29 in neither: said, not taken as given.
    const later: string[] = [];
    for await (const r of exportAuditSince(db.audit, at(29).toISOString())) later.push(formatAuditRecordLine(r));
    for (const c of await db.audit.checkpoints()) later.push(formatAuditCheckpointLine(c));
    await writeFile(exported, `${later.join('\n')}\n`);
    expect(await verifyAuditArchivesAndFiles(await archives(), [exported], { publicKeys })).toMatchObject({
      ok: false,
      problem: 'archive-missing',
      seq: 21,
    });
  });

  it('cut off after the archive is written, before the journal: nothing deleted; the next run writes it again', async () => {
    const db = await record(1, 40);
    await expect(
      runAuditArchive({
        store: db.audit,
        signer,
        dir,
        before: at(25),
        step: (s) => {
          if (s === 'archive-written') throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    expect(await db.audit.archiveState()).toBe(undefined);
    expect(await db.count('audit_log')).toBe(40);
    const run = await runAuditArchive({ store: db.audit, signer, dir, before: at(25) });
    expect(run.written?.manifest).toMatchObject({ archive: 1, lastSeq: 20 });
    expect(await archives()).toHaveLength(1);
    expect(await verifyAuditArchives(await archives(), { publicKeys, online: db.audit })).toMatchObject({
      ok: true,
      events: 40,
    });
  });

  it('cut off between delete batches: verifies in between; the next run finishes the deletes first', async () => {
    const db = await record(1, 40);
    const entries = await db.count('audit_dictionary');
    let batches = 0;
    await expect(
      runAuditArchive({
        store: db.audit,
        signer,
        dir,
        before: at(35),
        deleteBatch: 5,
        step: (s) => {
          if (s === 'batch-deleted' && ++batches === 2) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    expect(await db.audit.archiveState()).toMatchObject({ status: 'archiving', archive: 1 });
    expect(await db.count('audit_log')).toBe(30);
    // Half deleted: both views still verify.
    expect(await verifyAudit(db.audit, { publicKeys })).toMatchObject({ ok: true, archivedThrough: 30 });
    expect(await verifyAuditArchives(await archives(), { publicKeys, online: db.audit })).toMatchObject({
      ok: true,
      events: 40,
    });
    const run = await runAuditArchive({ store: db.audit, signer, dir, before: at(35), deleteBatch: 5 });
    // The rest of the records, the checkpoints, then the dictionary entries only archived records used.
    const collected = entries - (await db.count('audit_dictionary'));
    expect(collected).toBeGreaterThan(0);
    expect(run).toMatchObject({ resumed: auditArchiveFileName(1), deleted: 29 - 10 + 2 + collected });
    expect(run.written).toBe(undefined);
    expect(await db.audit.archiveState()).toMatchObject({ status: 'archived' });
    expect(await db.count('audit_log')).toBe(11);
    expect(await verifyAuditArchives(await archives(), { publicKeys, online: db.audit })).toMatchObject({
      ok: true,
      events: 40,
    });
  });

  it('a database writer who deletes more than was archived is caught by verifying archives with the online tail', async () => {
    const db = await record(1, 40);
    await runAuditArchive({ store: db.audit, signer, dir, before: at(15) });
    await db.audit.deleteArchived(25, 100);
    expect(await verifyAuditArchives(await archives(), { publicKeys, online: db.audit })).toMatchObject({
      ok: false,
      problem: 'missing',
      seq: 11,
    });
  });

  it('one node archives at a time: a held lease makes another node wait; an expired one is taken over; two at once write one archive', async () => {
    const a = await record(1, 40);
    const b = await backend.open();
    try {
      const now = Date.now();
      expect(await a.audit.acquireArchiveLease('node-a', now, now + 60_000)).toBe(true);
      expect(await runAuditArchive({ store: b.audit, signer, dir, before: at(25), holder: 'node-b' })).toEqual({
        deleted: 0,
        busy: true,
      });
      expect(await archives()).toEqual([]);
      // Renewal by the holder works; another holder still cannot take it.
      expect(await a.audit.acquireArchiveLease('node-a', now, now + 120_000)).toBe(true);
      expect(await b.audit.acquireArchiveLease('node-b', now + 60_001, now + 200_000)).toBe(false);
      // Expired (the holder was killed and never came back): taken over.
      expect(await b.audit.acquireArchiveLease('node-b', now + 120_001, now + 200_000)).toBe(true);
      await b.audit.releaseArchiveLease('node-b');
      await a.audit.releaseArchiveLease('node-a');
      expect(await a.audit.acquireArchiveLease('node-a', now, now + 1)).toBe(true);
      await a.audit.releaseArchiveLease('node-a');

      // Two nodes at once: one archive 1, never two.
      const runs = await Promise.all([
        runAuditArchive({ store: a.audit, signer, dir, before: at(25), holder: 'node-a' }),
        runAuditArchive({ store: b.audit, signer, dir, before: at(25), holder: 'node-b' }),
      ]);
      expect(runs.filter((r) => r.written)).toHaveLength(1);
      expect(await archives()).toHaveLength(1);
      expect(await verifyAuditArchives(await archives(), { publicKeys, online: a.audit })).toMatchObject({
        ok: true,
        events: 40,
      });
    } finally {
      await b.close();
    }
  });

  it('a run stalled past its lease while another node archived: it neither replaces that archive nor moves the anchor back', async () => {
    const a = await record(1, 40);
    const b = await backend.open();
    try {
      let stalled!: () => void;
      const reached = new Promise<void>((r) => {
        stalled = r;
      });
      let resume!: () => void;
      const gate = new Promise<void>((r) => {
        resume = r;
      });
      // Node A: its archive is complete (under its temporary name) when it stalls, and its lease is short.
      const slow = runAuditArchive({
        store: a.audit,
        signer,
        dir,
        before: at(25),
        holder: 'node-a',
        leaseMs: 50,
        step: async (s) => {
          if (s !== 'archive-sealed') return;
          stalled();
          await gate;
        },
      });
      await reached;
      await new Promise((r) => setTimeout(r, 100));
      // Node B takes the expired lease, archives up to a later checkpoint, and deletes.
      const fast = await runAuditArchive({ store: b.audit, signer, dir, before: at(35), holder: 'node-b' });
      expect(fast.written?.manifest).toMatchObject({ archive: 1, lastSeq: 30 });
      const journal = await b.audit.archiveState();
      resume();
      await expect(slow).rejects.toThrow('another audit archive run archived these records meanwhile');

      // B's archive is the one on disk, its journal is unchanged, A left no file behind, and all verifies.
      expect(await a.audit.archiveState()).toEqual(journal);
      expect((await readdir(dir)).filter((n) => n.startsWith('audit-archive-'))).toEqual([auditArchiveFileName(1)]);
      const bytes = await readFile(join(dir, auditArchiveFileName(1)));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(journal?.digest);
      expect(await verifyAuditArchives(await archives(), { publicKeys, online: a.audit })).toMatchObject({
        ok: true,
        events: 40,
      });
    } finally {
      await b.close();
    }
  });

  it('a paced run spreads its writing and deleting over the spread, and ends the same as one flat out', async () => {
    const db = await record(1, 40);
    const spreadMs = 400;
    const t0 = performance.now();
    const reached: Partial<Record<string, number>> = {};
    const run = await runAuditArchive({
      store: db.audit,
      signer,
      dir,
      before: at(35),
      deleteBatch: 5,
      pace: new AuditArchivePace(spreadMs),
      step: (s) => {
        reached[s] ??= performance.now() - t0;
      },
    });
    // Writing a record weighs nine times deleting one (WRITE_COST): the
    // journal is written no sooner than nine tenths of the spread, the run ends no sooner than all of it.
    expect(reached['journal-written']).toBeGreaterThanOrEqual(spreadMs * 0.9 - 10);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(spreadMs - 10);
    expect(run.written?.manifest).toMatchObject({ archive: 1, firstSeq: 1, lastSeq: 30, records: 30 });
    expect(await db.count('audit_log')).toBe(11);
    expect(await verifyAuditArchives(await archives(), { publicKeys, online: db.audit })).toMatchObject({
      ok: true,
      events: 40,
    });
  });

  it('a paced run stopped (shutdown) while writing leaves nothing behind; stopped while deleting, the next run resumes', async () => {
    const db = await record(1, 40);
    // A clock standing still: every batch waits out its share of an hour until stopped.
    const writing = new AuditArchivePace(3_600_000, () => 0);
    const stopped = runAuditArchive({ store: db.audit, signer, dir, before: at(35), pace: writing });
    setTimeout(() => writing.stop(), 30);
    await expect(stopped).rejects.toBeInstanceOf(AuditArchiveStopped);
    expect(await archives()).toEqual([]);
    expect((await readdir(dir)).filter((n) => n.startsWith('audit-archive-'))).toEqual([]);
    expect(await db.audit.archiveState()).toBe(undefined);
    expect(await db.count('audit_log')).toBe(40);

    // This time the write runs past due (no wait) and the deletes wait: stopped after the first delete batch.
    const clock = { now: 0 };
    const deleting = new AuditArchivePace(3_600_000, () => clock.now);
    clock.now = 2 * 3_600_000;
    const cut = runAuditArchive({
      store: db.audit,
      signer,
      dir,
      before: at(35),
      deleteBatch: 5,
      pace: deleting,
      step: (s) => {
        if (s !== 'journal-written') return;
        clock.now = 0;
        setTimeout(() => deleting.stop(), 30);
      },
    });
    await expect(cut).rejects.toBeInstanceOf(AuditArchiveStopped);
    expect(await db.audit.archiveState()).toMatchObject({ status: 'archiving', archive: 1 });
    expect(await db.count('audit_log')).toBe(35);
    const resumed = await runAuditArchive({ store: db.audit, signer, dir, before: at(35), deleteBatch: 5 });
    expect(resumed).toMatchObject({ resumed: auditArchiveFileName(1) });
    expect(await db.count('audit_log')).toBe(11);
    expect(await verifyAuditArchives(await archives(), { publicKeys, online: db.audit })).toMatchObject({
      ok: true,
      events: 40,
    });
  });

  it('a paced run keeps its lease through long waits: another node is busy meanwhile, not let in', async () => {
    const a = await record(1, 40);
    const b = await backend.open();
    try {
      // Waits of half an hour, a lease of 100 ms: without renewal during the waits the lease would lapse at once.
      const pace = new AuditArchivePace(3_600_000, () => 0);
      const slow = runAuditArchive({
        store: a.audit,
        signer,
        dir,
        before: at(35),
        holder: 'node-a',
        leaseMs: 100,
        pace,
      });
      await new Promise((r) => setTimeout(r, 350));
      expect(await runAuditArchive({ store: b.audit, signer, dir, before: at(35), holder: 'node-b' })).toEqual({
        deleted: 0,
        busy: true,
      });
      pace.hurry();
      expect((await slow).written?.manifest).toMatchObject({ archive: 1, lastSeq: 30 });
      expect(await verifyAuditArchives(await archives(), { publicKeys, online: a.audit })).toMatchObject({
        ok: true,
        events: 40,
      });
    } finally {
      await b.close();
    }
  });

  it('a run stalled past its lease while deleting, whose archive another node finished and went beyond, does not move the anchor back', async () => {
    const a = await record(1, 40);
    const b = await backend.open();
    try {
      let other: Awaited<ReturnType<typeof runAuditArchive>> | undefined;
      const stalled = runAuditArchive({
        store: a.audit,
        signer,
        dir,
        before: at(15),
        holder: 'node-a',
        leaseMs: 50,
        deleteBatch: 3,
        step: async (s) => {
          if (s !== 'batch-deleted' || other) return;
          // Stalled past the lease: node B resumes A's deletes, archives further (archive 2) and lets the lease go.
          await new Promise((r) => setTimeout(r, 100));
          other = await runAuditArchive({ store: b.audit, signer, dir, before: at(35), holder: 'node-b' });
        },
      });
      await expect(stalled).rejects.toThrow('another audit archive run archived these records meanwhile');
      expect(other).toMatchObject({
        resumed: auditArchiveFileName(1),
        written: { manifest: { archive: 2, lastSeq: 30 } },
      });
      // The journal is B's, and the next run archives on from it: no gap, one chain.
      expect(await a.audit.archiveState()).toMatchObject({ archive: 2, status: 'archived' });
      await record(41, 45);
      const next = await runAuditArchive({ store: a.audit, signer, dir, before: at(45) });
      expect(next.written?.manifest).toMatchObject({ archive: 3, firstSeq: 31, lastSeq: 45 });
      expect(await verifyAuditArchives((await archives()).sort(), { publicKeys, online: a.audit })).toMatchObject({
        ok: true,
        archives: 3,
        events: 45,
      });
    } finally {
      await b.close();
    }
  });
});
