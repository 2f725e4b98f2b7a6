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
 * just never waits: the run is then as fast as before, never slower.
 *
 * {@link hurry} drops the waits (the disk guard needs the space now);
 * {@link stop} ends the run at its next batch (the server is shutting down:
 * a write in progress leaves nothing behind, deletes resume next run — the
 * same points a crash is safe at, docs/audit.md "Crash behaviour").
 */
export class AuditArchivePace {
  readonly #spreadMs: number;
  readonly #now: () => number;
  readonly #start: number;
  #hurried = false;
  #stopped = false;
  #wake: AbortController | undefined;

  constructor(spreadMs: number, now: () => number = Date.now) {
    this.#spreadMs = spreadMs;
    this.#now = now;
    this.#start = now();
  }

  /** `done` of the run's `total` units of work are finished: waits until the schedule catches up. */
  async advance(done: number, total: number): Promise<void> {
    if (this.#stopped) throw new AuditArchiveStopped();
    if (this.#hurried || total <= 0) return;
    const due = this.#start + this.#spreadMs * Math.min(1, done / total);
    const wait = due - this.#now();
    if (wait <= 0) return;
    const wake = new AbortController();
    this.#wake = wake;
    // A wait is cut short by hurry() or stop(); an abort is not an error here.
    await sleep(wait, undefined, { signal: wake.signal }).catch(() => undefined);
    if (this.#wake === wake) this.#wake = undefined;
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
