import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setImmediate as yieldToRequests } from 'node:timers/promises';
import type { AuditArchiveState, AuditStore } from '../ports/storage.js';
import type { AuditArchiveManifest } from './audit-archive-format.js';
import type { AuditArchiveLeaseKeeper, AuditArchivePace } from './audit-archive-pace.js';
import { removeStaleArchivePartials, writeAuditArchive } from './audit-archive-write.js';
import type { AuditSigner } from './audit-checkpoint.js';
import { removeArchivedAuditFiles } from './audit-file-prune.js';

/** A step of an archive run, for crash tests (a hook that may kill the process there). */
export type AuditArchiveStep = 'archive-sealed' | 'archive-written' | 'journal-written' | 'batch-deleted';

export interface AuditArchiveRunOptions {
  readonly store: AuditStore;
  readonly signer: AuditSigner;
  /** The archive directory (server configuration, never a request). */
  readonly dir: string;
  /** Archive records sealed by a checkpoint signed before this time. */
  readonly before: Date;
  /** Rows deleted per batch, each its own short transaction (default 500). */
  readonly deleteBatch?: number;
  readonly now?: () => Date;
  /**
   * Who runs (the archival lease's holder; default a fresh id per run). A
   * restarted node that passes the same id takes its lease back at once;
   * otherwise a lease left by a killed run is free after `leaseMs`.
   */
  readonly holder?: string;
  /** How long the lease lasts without renewal (default 5 minutes; renewed between batches and through paced waits, at most every fifth of it). */
  readonly leaseMs?: number;
  readonly step?: (step: AuditArchiveStep) => void | Promise<void>;
  /**
   * The node's audit file (`audit.file`), when it has one: its rotated files
   * whose records are all archived are removed once the archive is durable
   * (see {@link removeArchivedAuditFiles}); the current file never is.
   */
  readonly onlineFile?: string;
  /**
   * Spreads the run's work over time (the schedule's runs, `audit.archive.spread`):
   * a record written counts {@link WRITE_COST} units, a row deleted one. Without
   * it the run goes flat out (an operator's `custos audit archive`, the disk guard).
   */
  readonly pace?: AuditArchivePace;
}

export interface AuditArchiveRunResult {
  /** The archive written by this run (none when nothing new was sealed before the time). */
  readonly written?: { readonly file: string; readonly manifest: AuditArchiveManifest; readonly bytes: number };
  /** An interrupted run's deletes finished first: that archive's file name. */
  readonly resumed?: string;
  /** Rows (records and checkpoints) deleted from the store. */
  readonly deleted: number;
  /** Rotated audit files removed because an archive holds all their records. */
  readonly filesRemoved?: number;
  /** Another node holds the archival lease: nothing was done. */
  readonly busy?: true;
}

/**
 * The time an archive run takes (`custos audit archive --before`, `POST
 * /v1/audit/archive`): a date (UTC midnight) or an RFC 3339 date-time with
 * `Z` or an offset; `undefined` for anything else. Archival deletes, so the
 * time must say exactly what it means: `Date.parse` alone also reads "2030",
 * "12/01/2030" (month first) and zone-less times (the local zone).
 */
export function parseAuditArchiveTime(text: string): Date | undefined {
  if (!ARCHIVE_TIME.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

const ARCHIVE_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** The file name of archive number `n`: fixed by the number, so a retried run replaces an orphan of its own. */
export function auditArchiveFileName(n: number): string {
  return `audit-archive-${String(n).padStart(6, '0')}.jsonl.gz`;
}

/**
 * One archive run (docs/audit.md, "Archival" and "Crash behaviour"):
 *
 * 1. A run left `archiving` (killed during its deletes) is finished first:
 *    its archive is durable, so the deletes go on from where they stopped.
 * 2. The records after the last archive up to the last checkpoint signed
 *    before `before` are written to the next archive, durably.
 * 3. The journal (the archive state, `archiving`) is recorded: from here on
 *    the store's records up to that checkpoint are in the archive.
 * 4. They are deleted in bounded batches, yielding to other work between
 *    batches; the state becomes `archived`.
 *
 * With `pace` (scheduled runs), steps 2 and 4 are spread over the pace's
 * `spreadMs`: the run waits between batches while it is ahead of an even
 * schedule, renewing its lease as it waits.
 *
 * Killed between 2 and 3, the file is an orphan the next run overwrites
 * (same number, same records: nothing was deleted). Killed in 4, step 1
 * resumes. The record and checkpoint at the anchor are kept (see
 * {@link AuditStore.deleteArchived}).
 */
export async function runAuditArchive(options: AuditArchiveRunOptions): Promise<AuditArchiveRunResult> {
  const { store } = options;
  const holder = options.holder ?? randomUUID();
  const leaseMs = options.leaseMs ?? 300_000;
  // One node of a cluster at a time: two would write the same archive number.
  const clock = () => (options.now ?? (() => new Date()))().getTime();
  let renewedAt = Number.NEGATIVE_INFINITY;
  const lease = async () => {
    const now = clock();
    // Renewed at most every fifth of its length: a renewal is a write
    // transaction, and one per delete batch doubled the run's writes. A lease
    // renewed less than a fifth of its length ago is still ours (no other
    // node can take it before it expires), with room for clock skew.
    if (now - renewedAt < leaseMs / 5) return true;
    if (!(await store.acquireArchiveLease(holder, now, now + leaseMs))) return false;
    renewedAt = now;
    return true;
  };
  if (!(await lease())) return { deleted: 0, busy: true };
  try {
    // File times are the wall clock's, whatever clock the run is given.
    await removeStaleArchivePartials(options.dir, leaseMs);
    const keep: AuditArchiveLeaseKeeper = {
      everyMs: leaseMs / 5,
      renew: async () => {
        if (!(await lease())) throw new Error('the audit archival lease was lost');
      },
    };
    const result = await run({ ...options, keep });
    if (!options.onlineFile) return result;
    // After the deletes, every run (one that wrote nothing too, so a file
    // kept by a crash goes next time): the archive the state names is durable.
    const state = await options.store.archiveState();
    if (!state) return result;
    const filesRemoved = await removeArchivedAuditFiles(options.onlineFile, state.checkpoint.seq);
    return filesRemoved > 0 ? { ...result, filesRemoved } : result;
  } finally {
    await store.releaseArchiveLease(holder).catch(() => undefined);
  }
}

type Run = AuditArchiveRunOptions & { readonly keep: AuditArchiveLeaseKeeper };

/**
 * What a paced run counts a record written as, in rows deleted: writing one
 * (read, expand, canonical JSON, two SHA-256s, gzip) costs about nine times
 * deleting it — measured idle, 54,000 records wrote in 1.8 s and deleted in
 * 0.19 s; in the soak the minutes of a run's write half cost the node more
 * than its delete half when both had an equal share. So the write gets about
 * nine tenths of the spread and the deletes the rest, and the run's cost is
 * even across the spread (docs/audit.md, "Pacing").
 */
const WRITE_COST = 9;

async function run(options: Run): Promise<AuditArchiveRunResult> {
  const { store, pace, keep } = options;
  // A run queued behind another while the server began to shut down does nothing.
  pace?.throwIfStopped();
  let state = await store.archiveState();
  let deleted = 0;
  let resumed: string | undefined;
  if (state?.status === 'archiving') {
    // Unpaced (how much is left is not known, and it is left from a crash), but a stop still ends it.
    deleted += await deleteArchived(options, state, async () => pace?.throwIfStopped());
    resumed = state.file;
    state = await markArchived(options, state);
  }
  const number = (state?.archive ?? 0) + 1;
  const file = auditArchiveFileName(number);
  const written = await writeAuditArchive({
    store,
    signer: options.signer,
    path: join(options.dir, file),
    before: options.before,
    ...(state ? { previous: { archive: state.archive, checkpoint: state.checkpoint, digest: state.digest } } : {}),
    ...(options.now ? { now: options.now } : {}),
    // A paced write can outlast the lease: it is renewed as the write goes
    // (and through the pace's waits), and a lost lease ends the write.
    onBatch: async (records, total) => {
      await keep.renew();
      await pace?.advance(records * WRITE_COST, total * (WRITE_COST + 1), keep);
    },
    // The archive takes its name (and then the journal its place) only while
    // this run still holds the lease and the state is the one it started
    // from. A run that stalled longer than its lease may find that another
    // node took the lease, wrote archive `number` and deleted its records;
    // renaming then would replace that archive (its journal pins its digest)
    // and journaling would move the anchor back. The lease makes the check
    // and the journal write one step: no other run can act in between.
    beforeRename: async () => {
      await options.step?.('archive-sealed');
      await keep.renew();
      await expectJournal(store, state);
    },
  });
  if (!written) return { deleted, ...(resumed ? { resumed } : {}) };
  await options.step?.('archive-written');
  const next: AuditArchiveState = {
    archive: number,
    checkpoint: written.checkpoint,
    digest: written.digest,
    file,
    status: 'archiving',
  };
  await store.setArchiveState(next);
  await options.step?.('journal-written');
  // A row deleted is one unit: about one per record (checkpoint rows add a few, the anchor is kept).
  const total = written.manifest.records;
  deleted += await deleteArchived(options, next, (n) =>
    pace?.advance(total * WRITE_COST + n, total * (WRITE_COST + 1), keep),
  );
  await markArchived(options, next);
  return {
    written: { file, manifest: written.manifest, bytes: written.bytes },
    deleted,
    ...(resumed ? { resumed } : {}),
  };
}

/**
 * Throws unless the journal is still `expected`: another run (this run's
 * lease lapsed while it stalled, and the lease was taken, used and released)
 * has moved it on. Called with the lease held, so check and write are one step.
 */
async function expectJournal(store: AuditStore, expected: AuditArchiveState | undefined): Promise<void> {
  const now = await store.archiveState();
  if ((now?.archive ?? 0) !== (expected?.archive ?? 0) || now?.status !== expected?.status) {
    throw new Error('another audit archive run archived these records meanwhile');
  }
}

/**
 * Records that `state`'s deletes are done. Only while the lease is held and
 * the journal still says `archiving` this archive: a run that stalled past
 * its lease would otherwise write an older archive's state over a newer one,
 * moving the anchor back and making the next run archive a gap.
 */
async function markArchived(options: Run, state: AuditArchiveState): Promise<AuditArchiveState> {
  await options.keep.renew();
  await expectJournal(options.store, state);
  const archived: AuditArchiveState = { ...state, status: 'archived' };
  await options.store.setArchiveState(archived);
  return archived;
}

/**
 * Deletes what `state` archived, batch by batch: the lease is renewed before
 * each batch (a run that lost it deletes nothing more; the journal lets
 * whoever holds it finish), and between batches requests run and the pace
 * is kept.
 */
async function deleteArchived(
  options: Run,
  state: AuditArchiveState,
  pace: (deleted: number) => Promise<void> | undefined,
): Promise<number> {
  const batch = options.deleteBatch ?? 500;
  let total = 0;
  for (;;) {
    await options.keep.renew();
    const n = await options.store.deleteArchived(state.checkpoint.seq, batch);
    if (n === 0) return total;
    total += n;
    await options.step?.('batch-deleted');
    // Each batch is its own short transaction; between them, requests run.
    await yieldToRequests();
    await pace(total);
  }
}
