import { setImmediate as nextTurn } from 'node:timers/promises';
import type { AuditEvent } from '../audit/audit-event.js';
import type { AuditObservation } from '../audit/audit-log.js';
import { parseDuration } from '../common/duration.js';
import { CustosError } from '../errors/custos-error.js';
import { ValidationError } from '../errors/errors.js';
import type { AuditRecord, AuditStore } from '../ports/storage.js';
import { type AnomalyConfig, type AnomalyRuleContext, createAnomalyRules } from './anomaly-config.js';
import { AnomalyEngine } from './anomaly-engine.js';
import type { Finding } from './finding.js';

/** What a replay is asked for (`POST /v1/alerts/replay`). */
export interface AnomalyReplayRequest {
  /** Start of the replayed range: a duration back from now (`7d`) or an ISO-8601 time. */
  readonly since: string;
  /** End of the range (exclusive), the same forms; default now. */
  readonly until?: string;
  /** Only these rules (default every rule the node's configuration turns on). */
  readonly rules?: readonly string[];
  /** Findings listed at most (default 100, at most 1,000); all are counted. */
  readonly limit?: number;
  /** Records before `since` the rules learn from first (default the node's `warm_events`, at most 1,000,000). */
  readonly warmEvents?: number;
  /** Wall-clock time this replay may take (ms), within the node's limit. */
  readonly timeBudgetMs?: number;
}

/** The bounds every replay keeps, whatever it asks for. */
export interface AnomalyReplayLimits {
  /** The longest range (default 90 days). */
  readonly maxRangeMs: number;
  /** Records replayed at most (default 5,000,000); the report says where it stopped. */
  readonly maxEvents: number;
  /** Wall-clock time a replay may take (default 5 minutes); the report says where it stopped. */
  readonly timeBudgetMs: number;
  /** Records read per page (default 1,000): the memory a replay holds is one page and the rules' bounded state. */
  readonly pageSize: number;
}

export const ANOMALY_REPLAY_LIMITS: AnomalyReplayLimits = {
  maxRangeMs: 90 * 86_400_000,
  maxEvents: 5_000_000,
  timeBudgetMs: 5 * 60_000,
  pageSize: 1_000,
};

export const REPLAY_LIST_MAX = 1_000;

/** A finding a rule would have raised: as stored alerts are, without a state (nothing was stored). */
export type ReplayedFinding = Omit<Finding, 'state' | 'acked_by' | 'acked_at'>;

export interface AnomalyReplayReport {
  readonly since: string;
  readonly until: string;
  /** The first and last record replayed (0 when none). */
  readonly from_seq: number;
  readonly to_seq: number;
  /** Records before `since` learned from, raising nothing. */
  readonly warmed: number;
  /** Records replayed. */
  readonly events: number;
  /** False when a bound stopped the replay before `until`: `stopped` says which. */
  readonly complete: boolean;
  readonly stopped?: 'time_budget' | 'max_events';
  /** Per rule: findings it would have raised, those over the per-minute budget, and errors. */
  readonly rules: readonly { rule: string; findings: number; suppressed: number; errors: number }[];
  /** The first findings in chain order, at most `limit`. */
  readonly findings: readonly ReplayedFinding[];
  readonly findings_total: number;
}

/**
 * `custos alerts replay`: runs fresh instances of the node's rules — its
 * effective configuration — over stored audit history and reports what they
 * would have raised, so rules can be tuned before they act. Nothing is
 * stored, announced or acted on: the findings go to a list in memory, never
 * to the finding store, the event stream, the log or the webhook.
 *
 * **A learned start.** Rules judge against baselines they learn from the
 * stream; replayed cold, every rule would be warming up at `since` and miss
 * what it would have caught live. So, as at unseal (`resumeAnomalyEngine`),
 * the `warm_events` records before `since` are learned from first, raising
 * nothing: the replay starts from the state a node restarted at `since`
 * would have had.
 *
 * **Bounded.** One replay at a time per node (`CUSTOS_ERR_REPLAY_BUSY`):
 * each holds the rules' state, up to their caps. History is read a page at
 * a time and each page goes through the engine's turns of 500 events, with
 * a turn of the event loop between pages, so the node keeps serving. The
 * range, the records and the wall-clock time are capped
 * ({@link AnomalyReplayLimits}); a replay a bound stops says where.
 */
export class AnomalyReplayer {
  readonly #store: Pick<AuditStore, 'firstSeqSince' | 'range'>;
  readonly #config: AnomalyConfig;
  readonly #context: AnomalyRuleContext;
  readonly #limits: AnomalyReplayLimits;
  readonly #now: () => number;
  #running = false;

  constructor(options: {
    store: Pick<AuditStore, 'firstSeqSince' | 'range'>;
    config?: AnomalyConfig;
    /** What the live rules read besides events (roles' declared hours, as they are now). */
    context?: AnomalyRuleContext;
    limits?: Partial<AnomalyReplayLimits>;
    now?: () => number;
  }) {
    this.#store = options.store;
    this.#config = options.config ?? {};
    this.#context = options.context ?? {};
    this.#limits = { ...ANOMALY_REPLAY_LIMITS, ...options.limits };
    this.#now = options.now ?? Date.now;
  }

  /** Whether a replay is running on this node. */
  get running(): boolean {
    return this.#running;
  }

  async replay(request: AnomalyReplayRequest): Promise<AnomalyReplayReport> {
    // Everything the caller chose is checked before the node's one replay slot is taken.
    const now = this.#now();
    const since = replayTime('since', request.since, now);
    const until = request.until === undefined ? now : replayTime('until', request.until, now);
    if (until <= since) throw new ValidationError('until must be later than since.');
    if (until - since > this.#limits.maxRangeMs) {
      throw new ValidationError(`A replay covers at most ${Math.round(this.#limits.maxRangeMs / 86_400_000)} days.`);
    }
    const limit = request.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 0 || limit > REPLAY_LIST_MAX) {
      throw new ValidationError(`limit is a whole number from 0 to ${REPLAY_LIST_MAX}.`);
    }
    const warmEvents = request.warmEvents ?? this.#config.warmEvents ?? 10_000;
    if (!Number.isSafeInteger(warmEvents) || warmEvents < 0 || warmEvents > 1_000_000) {
      throw new ValidationError('warm_events is a whole number from 0 to 1,000,000.');
    }
    const budget = request.timeBudgetMs ?? this.#limits.timeBudgetMs;
    if (!Number.isSafeInteger(budget) || budget < 1_000 || budget > this.#limits.timeBudgetMs) {
      throw new ValidationError(
        `time_budget is from 1s to ${Math.round(this.#limits.timeBudgetMs / 1_000)}s (the node's limit).`,
      );
    }
    const rules = createAnomalyRules(this.#config, this.#context).filter(
      (r) => !request.rules || request.rules.includes(r.name),
    );
    const unknown = (request.rules ?? []).filter((name) => !rules.some((r) => r.name === name));
    if (unknown.length > 0) {
      const on = createAnomalyRules(this.#config, this.#context).map((r) => r.name);
      throw new ValidationError(
        `Not a rule turned on on this node: ${unknown.map((n) => n.slice(0, 64)).join(', ')} (${on.join(', ')}).`,
      );
    }
    if (this.#running) throw new CustosError('CUSTOS_ERR_REPLAY_BUSY');
    this.#running = true;
    try {
      return await this.#run(rules, { since, until, limit, warmEvents, budget });
    } finally {
      this.#running = false;
    }
  }

  async #run(
    rules: ReturnType<typeof createAnomalyRules>,
    range: { since: number; until: number; limit: number; warmEvents: number; budget: number },
  ): Promise<AnomalyReplayReport> {
    const { since, until, limit, warmEvents, budget } = range;
    const started = this.#now();
    const findings: ReplayedFinding[] = [];
    let total = 0;
    // The engine's own path (budget per minute of event time, isolation, ids), with a store that only collects.
    const engine = new AnomalyEngine({
      rules,
      store: {
        raise: async (finding) => {
          total++;
          if (findings.length < limit) {
            const { state: _state, ...replayed } = finding;
            findings.push(replayed);
          }
          return true;
        },
      },
      ...(this.#config.maxFindingsPerMinute ? { maxFindingsPerMinute: this.#config.maxFindingsPerMinute } : {}),
      // A page waits in the queue at most; nothing may be dropped.
      maxQueue: this.#limits.pageSize,
    });
    const first = await this.#store.firstSeqSince(new Date(since).toISOString());
    let warmed = 0;
    let events = 0;
    let fromSeq = 0;
    let toSeq = 0;
    let stopped: AnomalyReplayReport['stopped'];
    if (first !== undefined) {
      const page = this.#limits.pageSize;
      // Baselines: the records just before `since`, learned from, raising nothing.
      for (let from = Math.max(1, first - warmEvents); from < first; ) {
        // The budget covers learning too: a million records to warm from is not free.
        if (this.#now() - started > budget) {
          stopped = 'time_budget';
          break;
        }
        const records = await this.#store.range(from, Math.min(page, first - from));
        if (records.length === 0) break;
        engine.warm(records.map(observation));
        warmed += records.length;
        from = records[records.length - 1]!.seq + 1;
        await nextTurn();
      }
      for (let from = first; stopped === undefined; ) {
        if (events >= this.#limits.maxEvents) {
          stopped = 'max_events';
          break;
        }
        if (this.#now() - started > budget) {
          stopped = 'time_budget';
          break;
        }
        const records = await this.#store.range(from, Math.min(page, this.#limits.maxEvents - events));
        const batch: AuditObservation[] = [];
        let ended = records.length === 0;
        for (const record of records) {
          if (Date.parse(record.ts) >= until) {
            ended = true;
            break;
          }
          batch.push(observation(record));
        }
        if (batch.length > 0) {
          if (fromSeq === 0) fromSeq = batch[0]!.seq;
          toSeq = batch[batch.length - 1]!.seq;
          events += batch.length;
          // Turns of 500 events with the event loop free in between; idle once the page is through.
          engine.offer(batch);
          await engine.idle();
        }
        if (ended) break;
        from = records[records.length - 1]!.seq + 1;
      }
    }
    await engine.close();
    const stats = engine.stats();
    return {
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      from_seq: fromSeq,
      to_seq: toSeq,
      warmed,
      events,
      complete: stopped === undefined,
      ...(stopped ? { stopped } : {}),
      rules: stats.rules.map((r) => ({
        rule: r.rule,
        findings: r.findings,
        suppressed: r.suppressed,
        errors: r.errors,
      })),
      findings,
      findings_total: total,
    };
  }
}

function observation(record: AuditRecord): AuditObservation {
  return { seq: record.seq, hash: record.hash, event: JSON.parse(record.event) as AuditEvent };
}

/** `7d` (back from now) or an ISO-8601 time, as epoch ms; anything else is refused with a clear message. */
export function replayTime(name: string, value: string, nowMs: number): number {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) {
    throw new ValidationError(`${name} is a duration back from now (7d, 12h) or an ISO-8601 time.`);
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw new ValidationError(`${name} is not a valid ISO-8601 time.`);
    if (ms > nowMs) throw new ValidationError(`${name} is in the future.`);
    return ms;
  }
  let back: number;
  try {
    back = parseDuration(value);
  } catch {
    throw new ValidationError(`${name} is a duration back from now (7d, 12h) or an ISO-8601 time.`);
  }
  return nowMs - back;
}
