import { statfs } from 'node:fs/promises';

/** What the disk guard does when free space falls below its threshold. */
export type DiskGuardAction =
  /** Log a warning (once on crossing, then every `check_every` × 10 while it lasts). */
  | 'warn'
  /**
   * Warn, and rotate the audit file at the next checkpoint, so the full file
   * is closed and can be shipped or compressed by the operator's tooling
   * (logrotate, an archiver) before custos must refuse requests. It frees no
   * space by itself: only archival removes audit files, and only rotated
   * files an archive wholly holds.
   */
  | 'rotate-and-warn'
  /**
   * Warn, rotate the audit file (when there is one), and run archival now —
   * the same run the `audit.archive` schedule makes, archiving what was
   * sealed before now − `keep_online` — so the database and the online files
   * shrink before the disk fills and audit writes start to fail closed.
   */
  | 'archive-and-warn';

export interface DiskGuardOptions {
  /** The directory whose filesystem is watched (the audit file's, else the data directory). */
  readonly dir: string;
  /** Low when fewer bytes than this are available to custos. */
  readonly warnFreeBytes?: number;
  /** Low when less than this percentage of the filesystem is available. */
  readonly warnFreePercent?: number;
  readonly checkEveryMs: number;
  /** The growth rate is taken over this sliding window (ms). */
  readonly windowMs: number;
  readonly action: DiskGuardAction;
  /** Audit bytes written so far, monotonic (the file sink's counter), when there is a file. */
  readonly auditBytes?: () => number | undefined;
  /** Rotates the audit file at its next checkpoint (the `rotate-and-warn` action). */
  readonly rotateAudit?: () => void;
  /**
   * One archive run now (the `archive-and-warn` action): the schedule's run,
   * which never doubles a run in progress (and the node's lease keeps another
   * node of a cluster from archiving at the same time). It logs counts only.
   */
  readonly archiveAudit?: () => Promise<void>;
  readonly log: {
    warn(fields: Record<string, unknown>, message: string): void;
    info(fields: Record<string, unknown>, message: string): void;
  };
  /** Reads the filesystem (default `fs.statfs`); the boundary a test may replace. */
  readonly statfs?: (dir: string) => Promise<{ bavail: number; bsize: number; blocks: number }>;
  readonly now?: () => number;
}

/** The figures an operator sees (`GET /v1/sys/disk`): counts only, never a path. */
export interface DiskGuardReading {
  readonly checkedAt: string;
  readonly freeBytes: number;
  readonly totalBytes: number;
  readonly freePercent: number;
  /** Audit file bytes per minute over the window (absent without a file sink or before two samples). */
  readonly auditGrowthBytesPerMin?: number;
  /** At the growth rate, minutes until the free space is gone (absent when not growing). */
  readonly minutesToFull?: number;
  readonly low: boolean;
}

/**
 * Watches free space where the audit trail grows, and the rate it grows at.
 * Below the threshold it warns (and, with `rotate-and-warn`, closes the
 * current audit file early) before the disk fills and audit writes — hence
 * every request — start to fail closed. The public health route learns only
 * that the disk is low (a fixed word); the figures are for operators, since
 * sizes and rates tell an outsider how busy the node is.
 */
export class DiskGuard {
  readonly #options: DiskGuardOptions;
  readonly #statfs: NonNullable<DiskGuardOptions['statfs']>;
  readonly #now: () => number;
  readonly #samples: { at: number; bytes: number }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #reading: DiskGuardReading | undefined;
  #lowChecks = 0;
  #archiving: Promise<void> | undefined;

  constructor(options: DiskGuardOptions) {
    if (options.warnFreeBytes === undefined && options.warnFreePercent === undefined) {
      throw new TypeError('the disk guard needs warnFreeBytes or warnFreePercent');
    }
    this.#options = options;
    this.#statfs = options.statfs ?? ((dir) => statfs(dir));
    this.#now = options.now ?? Date.now;
  }

  /** Checks now and every `checkEveryMs` after. */
  async start(): Promise<void> {
    await this.check();
    this.#timer = setInterval(() => {
      this.check().catch((error: unknown) => this.#options.log.warn({ err: error }, 'disk guard check failed'));
    }, this.#options.checkEveryMs);
    // Watching the disk must not keep a stopping process alive.
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Resolves when the archive run started by the last crossing (if any) has ended. */
  async settled(): Promise<void> {
    await this.#archiving;
  }

  /** What it does when low. */
  get action(): DiskGuardAction {
    return this.#options.action;
  }

  /** The last reading (undefined before the first check). */
  get reading(): DiskGuardReading | undefined {
    return this.#reading;
  }

  /** True while free space is below the threshold. */
  get low(): boolean {
    return this.#reading?.low ?? false;
  }

  /** One check: read the filesystem, update the growth window, act on a crossing. */
  async check(): Promise<DiskGuardReading> {
    const o = this.#options;
    const fs = await this.#statfs(o.dir);
    const now = this.#now();
    const freeBytes = fs.bavail * fs.bsize;
    const totalBytes = fs.blocks * fs.bsize;
    const freePercent = totalBytes === 0 ? 0 : (100 * freeBytes) / totalBytes;
    const low =
      (o.warnFreeBytes !== undefined && freeBytes < o.warnFreeBytes) ||
      (o.warnFreePercent !== undefined && freePercent < o.warnFreePercent);
    const growth = this.#growth(now);
    const reading: DiskGuardReading = {
      checkedAt: new Date(now).toISOString(),
      freeBytes,
      totalBytes,
      freePercent: Math.round(freePercent * 100) / 100,
      ...(growth !== undefined ? { auditGrowthBytesPerMin: Math.round(growth) } : {}),
      ...(growth !== undefined && growth > 0 ? { minutesToFull: Math.floor(freeBytes / growth) } : {}),
      low,
    };
    const wasLow = this.#reading?.low ?? false;
    this.#reading = reading;
    // Counts only in the log: the operator knows where the data directory is.
    const fields = { free_bytes: freeBytes, free_percent: reading.freePercent, audit_growth_bytes_per_min: growth };
    if (low) {
      if (!wasLow || ++this.#lowChecks % 10 === 0) {
        o.log.warn({ ...fields, action: o.action }, 'disk space for the audit trail is low');
      }
      if (!wasLow && o.action !== 'warn') o.rotateAudit?.();
      // Once per crossing, and not awaited: a long run must not hold up the
      // checks. A run still going from an earlier crossing is not doubled.
      if (!wasLow && o.action === 'archive-and-warn' && o.archiveAudit && !this.#archiving) {
        this.#archiving = o
          .archiveAudit()
          .catch((error: unknown) =>
            o.log.warn({ code: (error as { code?: string }).code ?? 'error' }, 'early audit archive run failed'),
          )
          .finally(() => {
            this.#archiving = undefined;
          });
      }
    } else {
      this.#lowChecks = 0;
      if (wasLow) o.log.info(fields, 'disk space for the audit trail is back above the threshold');
    }
    return reading;
  }

  /** Bytes per minute over the window, from the sink's monotonic counter. */
  #growth(now: number): number | undefined {
    const bytes = this.#options.auditBytes?.();
    if (bytes === undefined) return undefined;
    // A counter that went back is a new sink (sealed and unsealed again): start the window over.
    if (bytes < (this.#samples.at(-1)?.bytes ?? 0)) this.#samples.length = 0;
    this.#samples.push({ at: now, bytes });
    while (this.#samples.length > 2 && now - this.#samples[1]!.at >= this.#options.windowMs) this.#samples.shift();
    const first = this.#samples[0]!;
    if (now === first.at) return undefined;
    return ((bytes - first.bytes) * 60_000) / (now - first.at);
  }
}
