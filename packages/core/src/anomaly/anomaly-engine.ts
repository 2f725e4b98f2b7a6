import type { AuditObservation } from '../audit/audit-log.js';
import type { AnomalyRule } from './anomaly-rule.js';
import type { Finding } from './finding.js';
import { type FindingStore, findingId } from './finding-store.js';

export interface AnomalyEngineOptions {
  readonly rules: readonly AnomalyRule[];
  /** Where raised findings are kept; a finding is published only once stored. */
  readonly store: Pick<FindingStore, 'raise'>;
  /**
   * Events that may wait for the rules (default 100,000). Beyond, new events
   * are dropped and counted (`stats().dropped`): the engine never holds up
   * the audit log nor grows without bound when the rules fall behind.
   */
  readonly maxQueue?: number;
  /**
   * Findings each rule may raise per minute at most (default 60, a token
   * bucket of that size). Beyond, findings are counted as suppressed and not
   * stored: a caller who can make findings happen (refusals from many source
   * addresses) cannot make custos write without bound.
   */
  readonly maxFindingsPerMinute?: number;
  /** Findings are being suppressed for `rule` (once per run, with the total so far). */
  readonly onSuppressing?: (rule: string, suppressed: number) => void;
  /** Events given to the rules per turn of the event loop (default 500), so requests are served in between. */
  readonly turnSize?: number;
  /** A rule threw (the event is skipped for that rule only). Never receives event contents. */
  readonly onRuleError?: (rule: string, error: unknown) => void;
  /** A finding could not be stored after its retries. Never receives its contents. */
  readonly onStoreError?: (error: unknown) => void;
  /**
   * The queue is full and events are being dropped: called once per run of
   * drops (with the total so far), not per event, so a flood does not become
   * a flood of log lines.
   */
  readonly onDropping?: (dropped: number) => void;
  /** Waits between store retries (default 100 ms, 400 ms, 1.6 s). */
  readonly storeRetryMs?: readonly number[];
  /**
   * Run after each finding is stored and published — also for one stored
   * before (raised again after a restart), so work a crash cut short is
   * done; the hook decides (QuarantineRunner claims each finding's actions
   * once). Part of the finding's write: {@link progress} stays before its
   * record until the hook is done, so a crash mid-way examines the record
   * again at the next start. Must not throw; it runs off every request's path.
   */
  readonly afterStore?: (finding: Finding) => Promise<void>;
}

/** Per-rule counts, for `custos alerts rules`, health and the log. */
export interface AnomalyRuleStats {
  readonly rule: string;
  readonly description: string;
  readonly config: unknown;
  events: number;
  findings: number;
  errors: number;
  /** Findings over the rule's budget, not stored. */
  suppressed: number;
}

export interface AnomalyEngineStats {
  readonly rules: readonly AnomalyRuleStats[];
  /** Events waiting for the rules. */
  readonly queued: number;
  /** Events the rules never saw because the queue was full. */
  readonly dropped: number;
  /** Findings raised but lost because storage refused them after every retry. */
  readonly lost: number;
  /**
   * Milliseconds the rules have held the event loop, all turns together: the
   * engine's own cost, which an operator (and the benchmark) can set against
   * the node's CPU time without the noise of comparing two processes.
   */
  readonly busy_ms: number;
}

export type FindingListener = (finding: Finding) => void;

/**
 * Runs the rules over the audit stream.
 *
 * **Off the request path.** {@link offer} is the audit log's observer: it is
 * called once a batch is durable and its requests have been answered, and
 * only queues the batch. The rules run later, a bounded slice per turn of
 * the event loop, so a slow or throwing rule can neither delay nor fail a
 * request. Per event the engine parses the time once and calls each rule;
 * it reads no storage.
 *
 * **Isolation.** A rule that throws is caught, counted and reported
 * (`onRuleError`); the other rules, and later events for the same rule, go on.
 *
 * **Durable findings.** A finding is stored (sealed) before anyone is told
 * of it, with retries; its id is derived from the rule and the record, so it
 * is stored once however often it is raised. What was raised survives a
 * restart; a finding storage refused after every retry is counted as lost
 * and reported, and {@link progress} stops before its record, so the next
 * start (see `resumeAnomalyEngine`) runs the rules over it again.
 */
export class AnomalyEngine {
  readonly #rules: readonly AnomalyRule[];
  readonly #stats: AnomalyRuleStats[];
  readonly #store: Pick<FindingStore, 'raise'>;
  readonly #maxQueue: number;
  readonly #turnSize: number;
  readonly #onRuleError: (rule: string, error: unknown) => void;
  readonly #onStoreError: (error: unknown) => void;
  readonly #onDropping: (dropped: number) => void;
  #dropping = false;
  readonly #retryMs: readonly number[];
  readonly #afterStore: ((finding: Finding) => Promise<void>) | undefined;
  readonly #listeners = new Set<FindingListener>();
  readonly #perMinute: number;
  /** Per rule: a token bucket over event time (so replayed history is budgeted as it happened). */
  readonly #budgets: { tokens: number; at: number; suppressing: boolean }[];
  readonly #onSuppressing: (rule: string, suppressed: number) => void;
  /** Batches waiting, and the position reached in the first one. */
  #queue: (readonly AuditObservation[])[] = [];
  #offset = 0;
  #queued = 0;
  #dropped = 0;
  #lost = 0;
  #busyMs = 0;
  #scheduled = false;
  #closed = false;
  /** Stores in flight, with the seq of the record each finding was raised on (findings are few). */
  readonly #writes = new Map<Promise<void>, number>();
  /** The seq of the last record the rules saw. */
  #lastSeq = 0;
  /**
   * The first record dropped unexamined or whose finding storage refused for
   * good: progress stops before it, so the next start examines it again.
   */
  #lostAt = Number.POSITIVE_INFINITY;
  #idleWaiters: (() => void)[] = [];

  constructor(options: AnomalyEngineOptions) {
    this.#rules = options.rules;
    this.#stats = options.rules.map((r) => ({
      rule: r.name,
      description: r.description,
      config: r.config,
      events: 0,
      findings: 0,
      errors: 0,
      suppressed: 0,
    }));
    this.#perMinute = options.maxFindingsPerMinute ?? 60;
    this.#budgets = options.rules.map(() => ({ tokens: this.#perMinute, at: 0, suppressing: false }));
    this.#onSuppressing = options.onSuppressing ?? (() => undefined);
    this.#store = options.store;
    this.#maxQueue = options.maxQueue ?? 100_000;
    this.#turnSize = options.turnSize ?? 500;
    this.#onRuleError = options.onRuleError ?? (() => undefined);
    this.#onStoreError = options.onStoreError ?? (() => undefined);
    this.#onDropping = options.onDropping ?? (() => undefined);
    this.#retryMs = options.storeRetryMs ?? [100, 400, 1_600];
    this.#afterStore = options.afterStore;
  }

  /** The audit log's observer: queues an acknowledged batch and returns at once. */
  readonly offer = (batch: readonly AuditObservation[]): void => {
    if (this.#closed) return;
    if (this.#queued + batch.length > this.#maxQueue) {
      this.#dropped += batch.length;
      // The progress stays before them: the next start examines what was dropped now.
      if (batch.length > 0) this.#lostAt = Math.min(this.#lostAt, batch[0]!.seq);
      if (!this.#dropping) {
        this.#dropping = true;
        try {
          this.#onDropping(this.#dropped);
        } catch {
          // Reporting must not reach the audit log's loop.
        }
      }
      return;
    }
    this.#dropping = false;
    this.#queue.push(batch);
    this.#queued += batch.length;
    this.#schedule();
  };

  /**
   * Feeds history to the rules without raising anything (baselines after a
   * restart, before live events). Synchronous: call it before {@link offer}
   * receives anything, with records in chain order.
   */
  warm(observations: Iterable<AuditObservation>): void {
    for (const observation of observations) {
      const epochMs = Date.parse(observation.event.time);
      for (let i = 0; i < this.#rules.length; i++) {
        try {
          this.#rules[i]!.observe(observation, epochMs);
        } catch (error) {
          this.#stats[i]!.errors++;
          this.#onRuleError(this.#rules[i]!.name, error);
        }
      }
    }
  }

  /** Told of each finding once it is stored. Returns the unsubscribe function. */
  subscribe(listener: FindingListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stats(): AnomalyEngineStats {
    return {
      rules: this.#stats.map((s) => ({ ...s })),
      queued: this.#queued,
      dropped: this.#dropped,
      lost: this.#lost,
      busy_ms: Math.round(this.#busyMs * 1000) / 1000,
    };
  }

  /** Resolves once every queued event has been through the rules and every finding is stored and published. */
  idle(): Promise<void> {
    if (this.#queued === 0 && this.#writes.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Processes what is queued, waits for the stores, then accepts nothing more. */
  async close(): Promise<void> {
    await this.idle();
    this.#closed = true;
    this.#listeners.clear();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#turn());
  }

  #turn(): void {
    this.#scheduled = false;
    // One clock read per turn (up to `turnSize` events), not per event.
    const started = performance.now();
    let budget = this.#turnSize;
    while (budget > 0 && this.#queue.length > 0) {
      const batch = this.#queue[0]!;
      while (budget > 0 && this.#offset < batch.length) {
        this.#observe(batch[this.#offset++]!);
        this.#queued--;
        budget--;
      }
      if (this.#offset >= batch.length) {
        this.#queue.shift();
        this.#offset = 0;
      }
    }
    this.#busyMs += performance.now() - started;
    if (this.#queue.length > 0) this.#schedule();
    else this.#checkIdle();
  }

  /**
   * The last seq up to which every record has been through the rules and
   * every finding raised on them is stored (or given up): where a restart
   * may resume raising. 0 before any record.
   */
  progress(): number {
    let seq = Math.min(this.#lastSeq, this.#lostAt - 1);
    for (const pending of this.#writes.values()) seq = Math.min(seq, pending - 1);
    return seq;
  }

  #observe(observation: AuditObservation): void {
    if (observation.seq > this.#lastSeq) this.#lastSeq = observation.seq;
    const epochMs = Date.parse(observation.event.time);
    for (let i = 0; i < this.#rules.length; i++) {
      const rule = this.#rules[i]!;
      const stats = this.#stats[i]!;
      stats.events++;
      let draft: ReturnType<AnomalyRule['observe']>;
      try {
        draft = rule.observe(observation, epochMs);
      } catch (error) {
        stats.errors++;
        this.#onRuleError(rule.name, error);
        continue;
      }
      if (!draft) continue;
      if (!this.#spend(i, epochMs)) {
        stats.suppressed++;
        const budget = this.#budgets[i]!;
        if (!budget.suppressing) {
          budget.suppressing = true;
          try {
            this.#onSuppressing(rule.name, stats.suppressed);
          } catch {
            // Reporting must not stop the rules.
          }
        }
        continue;
      }
      stats.findings++;
      this.#raise(
        {
          ...draft,
          id: findingId(rule.name, epochMs, observation.seq),
          rule: rule.name,
          time: observation.event.time,
          state: 'open',
        },
        observation.seq,
      );
    }
  }

  /** Takes one finding from rule `i`'s budget; false when it is spent. */
  #spend(i: number, epochMs: number): boolean {
    const budget = this.#budgets[i]!;
    if (epochMs > budget.at) {
      budget.tokens = Math.min(this.#perMinute, budget.tokens + ((epochMs - budget.at) * this.#perMinute) / 60_000);
      budget.at = epochMs;
    }
    if (budget.tokens < 1) return false;
    budget.tokens--;
    budget.suppressing = false;
    return true;
  }

  #raise(finding: Finding, seq: number): void {
    const write = this.#storeWithRetry(finding).then(
      async (stored) => {
        // Stored before: already published when it was raised the first time.
        if (stored) this.#publish(finding);
        await this.#afterStore?.(finding).catch(() => undefined);
      },
      (error: unknown) => {
        this.#lost++;
        this.#lostAt = Math.min(this.#lostAt, seq);
        this.#onStoreError(error);
      },
    );
    this.#writes.set(write, seq);
    void write.finally(() => {
      this.#writes.delete(write);
      this.#checkIdle();
    });
  }

  async #storeWithRetry(finding: Finding): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#store.raise(finding);
      } catch (error) {
        const wait = this.#retryMs[attempt];
        if (wait === undefined) throw error;
        await new Promise((resolve) => setTimeout(resolve, wait).unref());
      }
    }
  }

  #publish(finding: Finding): void {
    for (const listener of this.#listeners) {
      try {
        listener(finding);
      } catch {
        // A failing sink must not keep the others from hearing of the finding.
      }
    }
  }

  #checkIdle(): void {
    if (this.#queued !== 0 || this.#writes.size !== 0 || this.#scheduled) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
