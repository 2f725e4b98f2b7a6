import { AuditArchivePace, type AuditArchiveRunResult, AuditArchiveStopped } from '@custos/core';

export interface AuditArchiveScheduleOptions {
  /** Run every this many ms. */
  readonly everyMs: number;
  /** Keep this much (ms) of the most recent audit trail online: archive what was sealed before now − keepOnline. */
  readonly keepOnlineMs: number;
  /**
   * Spread each run's work over this many ms (`audit.archive.spread`,
   * default 80 % of `every`; 0: as fast as it goes). See {@link AuditArchivePace}.
   */
  readonly spreadMs?: number;
  /** One archive run (the node's; undefined while it is sealed). */
  readonly archive: (before: Date, options: { pace?: AuditArchivePace }) => Promise<AuditArchiveRunResult> | undefined;
  readonly log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  readonly now?: () => number;
}

/**
 * `audit.archive: { every, keep_online, spread }` (docs/audit.md,
 * "Schedule"): runs archival on a timer, each run paced over `spread`. A run
 * that is still going when the next is due is not doubled (the node also
 * runs them one at a time); a failed run is logged (counts and codes only,
 * never a path) and tried again next time. Stopping (shutdown) ends a paced
 * run at its next batch instead of waiting out its pace.
 */
export class AuditArchiveSchedule {
  readonly #options: AuditArchiveScheduleOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #pace: AuditArchivePace | undefined;

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
    this.#pace?.stop();
    await this.#running;
  }

  /**
   * One scheduled run now (the timer calls this). `hurry` (the disk guard:
   * space is needed now): the run, or the one in progress, drops its pace.
   */
  runOnce({ hurry = false } = {}): Promise<void> {
    this.#running ??= this.#run(hurry).finally(() => {
      this.#running = undefined;
      this.#pace = undefined;
    });
    if (hurry) this.#pace?.hurry();
    return this.#running;
  }

  async #run(hurry: boolean): Promise<void> {
    const now = this.#options.now?.() ?? Date.now();
    const spreadMs = this.#options.spreadMs ?? 0;
    const pace = spreadMs > 0 && !hurry ? new AuditArchivePace(spreadMs) : undefined;
    this.#pace = pace;
    try {
      const run = await this.#options.archive(new Date(now - this.#options.keepOnlineMs), pace ? { pace } : {});
      if (!run) return;
      const m = run.written?.manifest;
      if (m || run.deleted > 0 || run.resumed || run.filesRemoved) {
        this.#options.log.info(
          {
            ...(m ? { archive: m.archive, first_seq: m.firstSeq, last_seq: m.lastSeq, records: m.records } : {}),
            deleted: run.deleted,
            ...(run.filesRemoved ? { files_removed: run.filesRemoved } : {}),
            ...(run.resumed ? { resumed: true } : {}),
          },
          'audit archived',
        );
      }
    } catch (error) {
      // Shutdown: the write in progress left nothing behind, or the next run resumes the deletes.
      if (error instanceof AuditArchiveStopped) return this.#options.log.info({}, 'audit archive run stopped');
      this.#options.log.warn({ code: (error as { code?: string }).code ?? 'error' }, 'audit archive run failed');
    }
  }
}
