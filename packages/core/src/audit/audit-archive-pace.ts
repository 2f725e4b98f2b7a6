import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Thrown by a paced run whose pace was stopped (the server is shutting
 * down): it ends at a safe point. Only scheduled runs are paced, so this
 * never reaches a client.
 */
export class AuditArchiveStopped extends Error {
  constructor() {
    super('the audit archive run was stopped (shutdown); the next run resumes it');
    this.name = 'AuditArchiveStopped';
  }
}

/** What a paced wait does to keep the run's archival lease: renew it at least every `everyMs`. */
export interface AuditArchiveLeaseKeeper {
  readonly everyMs: number;
  /** Renews the lease; throws when it was lost (the wait ends the run). */
  renew(): Promise<void>;
}

/** The longest single timer Node.js runs as asked (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Spreads one archive run's work over `spreadMs` (`audit.archive.spread`,
 * docs/audit.md "Pacing"): after each batch the run waits while it is ahead
 * of an even schedule — `done / total` of its work should not be finished
 * before the same share of `spreadMs` has passed.
 *
 * Why: a run archives a whole period's records (half a million on a loaded
 * node every five minutes), and done flat out its reads, hashing, gzip and
 * deletes take a third of a 2-core node's throughput for a minute or two
 * (the soak in BENCHMARKS.md). Spread over most of the period, the same work
 * is a small steady share instead of a dip. A node too busy to keep the pace
 * never waits: the run then ends when the work is done, as an unpaced run
 * would, only later than `spreadMs` if the node cannot keep up.
 *
 * A wait can be longer than the archival lease (a quiet node, a daily
 * schedule: one batch may be due hours later), so it is cut into slices and
 * the lease renewed between them — a run that lost it ends there, like any
 * run that lost its lease.
 *
 * {@link hurry} drops the waits (an operator or the disk guard wants the run
 * done now); {@link stop} ends the run at its next batch (the server is
 * shutting down: a write in progress leaves nothing behind, deletes resume
 * next run — the same points a crash is safe at, docs/audit.md "Crash
 * behaviour"). The schedule is kept on a monotonic clock, so a wall clock
 * stepped back never stretches a wait.
 */
export class AuditArchivePace {
  readonly #spreadMs: number;
  readonly #now: () => number;
  readonly #start: number;
  #hurried = false;
  #stopped = false;
  #wake: AbortController | undefined;

  constructor(spreadMs: number, now: () => number = () => performance.now()) {
    this.#spreadMs = spreadMs;
    this.#now = now;
    this.#start = now();
  }

  /**
   * `done` of the run's `total` units of work are finished: waits until the
   * schedule catches up, renewing the lease through `keep` as it waits.
   */
  async advance(done: number, total: number, keep?: AuditArchiveLeaseKeeper): Promise<void> {
    this.throwIfStopped();
    if (total <= 0) return;
    const due = this.#start + this.#spreadMs * Math.min(1, done / total);
    for (let wait = due - this.#now(); wait > 0 && !this.#hurried; wait = due - this.#now()) {
      const wake = new AbortController();
      this.#wake = wake;
      // A wait is cut short by hurry() or stop(), so it needs no hold on the
      // process either (every point a run stops at is safe); an abort is not
      // an error here.
      const slice = Math.min(wait, keep?.everyMs ?? wait, MAX_TIMER_MS);
      await sleep(slice, undefined, { signal: wake.signal, ref: false }).catch(() => undefined);
      if (this.#wake === wake) this.#wake = undefined;
      this.throwIfStopped();
      await keep?.renew();
    }
  }

  /** Throws {@link AuditArchiveStopped} once {@link stop} was called. */
  throwIfStopped(): void {
    if (this.#stopped) throw new AuditArchiveStopped();
  }

  /** No more waiting: the rest of the run goes as fast as the node allows. */
  hurry(): void {
    this.#hurried = true;
    this.#wake?.abort();
  }

  /** The run stops at its next batch with {@link AuditArchiveStopped}. */
  stop(): void {
    this.#stopped = true;
    this.#wake?.abort();
  }
}
