import type { AuditArchiveRunResult } from '@custos/core';

export interface AuditArchiveScheduleOptions {
  /** Run every this many ms. */
  readonly everyMs: number;
  /** Keep this much (ms) of the most recent audit trail online: archive what was sealed before now − keepOnline. */
  readonly keepOnlineMs: number;
  /** One archive run (the node's; undefined while it is sealed). */
  readonly archive: (before: Date) => Promise<AuditArchiveRunResult> | undefined;
  readonly log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  readonly now?: () => number;
}

/**
 * `audit.archive: { every, keep_online }` (docs/audit.md, "Schedule"): runs
 * archival on a timer. A run that is still going when the next is due is
 * not doubled (the node also runs them one at a time); a failed run is
 * logged (counts and codes only, never a path) and tried again next time.
 */
export class AuditArchiveSchedule {
  readonly #options: AuditArchiveScheduleOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: AuditArchiveScheduleOptions) {
    this.#options = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.runOnce(), this.#options.everyMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One scheduled run now (the timer calls this). */
  runOnce(): Promise<void> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(): Promise<void> {
    const now = this.#options.now?.() ?? Date.now();
    try {
      const run = await this.#options.archive(new Date(now - this.#options.keepOnlineMs));
      if (!run) return;
      const m = run.written?.manifest;
      if (m || run.deleted > 0 || run.resumed) {
        this.#options.log.info(
          {
            ...(m ? { archive: m.archive, first_seq: m.firstSeq, last_seq: m.lastSeq, records: m.records } : {}),
            deleted: run.deleted,
            ...(run.resumed ? { resumed: true } : {}),
          },
          'audit archived',
        );
      }
    } catch (error) {
      this.#options.log.warn({ code: (error as { code?: string }).code ?? 'error' }, 'audit archive run failed');
    }
  }
}
