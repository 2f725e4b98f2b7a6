import type { AuditObservation } from '../../audit/audit-log.js';
import type { AnomalyRule } from '../anomaly-rule.js';
import type { FindingDraft, FindingSeverity } from '../finding.js';
import { RateTracker } from '../rate-window.js';
import { overridesFor, subjectOf } from '../rule-support.js';

/** What may be tuned per role (`roles` in {@link RequestBurstConfig}). */
export interface RequestBurstRoleConfig {
  /** Never fire for this role (batch jobs whose rate is bursty by design). */
  readonly disabled?: boolean;
  readonly minRequests?: number;
  readonly factor?: number;
  readonly peakFactor?: number;
}

export interface RequestBurstConfig {
  readonly severity: FindingSeverity;
  /** The sliding window requests are counted over (ms, default 60 s). */
  readonly windowMs: number;
  /** Buckets the window slides by (default 6: 10 s steps). */
  readonly buckets: number;
  /** Never fire below this many requests in the window (default 300: five a second). */
  readonly minRequests: number;
  /** Fire when the window holds more than this many times the identity's usual requests per window (default 10). */
  readonly factor: number;
  /** How far back the usual rate reaches (ms, default 6 h): the span of the moving average. */
  readonly baselineMs: number;
  /** …and more than this many times the identity's usual peak window (default 3): rhythm is not a burst. */
  readonly peakFactor: number;
  /** How slowly the usual peak fades (ms, default 7 d: a daily or weekly job's peak is remembered). */
  readonly peakMs: number;
  /** An identity seen for less than this (ms, default 1 h) has no baseline yet and never fires. */
  readonly minHistoryMs: number;
  /** Judge operator tokens (by accessor) too (default false: operators' scripts are bursty). Root never. */
  readonly operators: boolean;
  /** Identities tracked at most (default 10,000; the oldest goes first, and warms up again). */
  readonly maxTracked: number;
  /** Per-role overrides by role name. */
  readonly roles: { readonly [role: string]: RequestBurstRoleConfig };
  /** Per identity (a task's `sub`): its own entry wins over its role's. */
  readonly identities: { readonly [identity: string]: RequestBurstRoleConfig };
}

export const REQUEST_BURST_DEFAULTS: RequestBurstConfig = {
  severity: 'medium',
  windowMs: 60_000,
  buckets: 6,
  minRequests: 300,
  factor: 10,
  baselineMs: 6 * 3_600_000,
  peakFactor: 3,
  peakMs: 7 * 86_400_000,
  minHistoryMs: 3_600_000,
  operators: false,
  maxTracked: 10_000,
  roles: {},
  identities: {},
};

/**
 * `request-burst`: an identity makes requests far faster than it usually
 * does. An agent in a loop, a prompt-injected agent dumping every secret it
 * may read, a stolen token driven by a script: the rate jumps by an order
 * of magnitude against the identity's own history, allowed or refused.
 *
 * Per identity a {@link RateTracker} window slides over `windowMs`; the rule fires
 * when the window holds at least `minRequests` requests (the floor: a
 * quiet identity going from 1 to 15 a minute is not a burst worth a page),
 * more than `factor` × its usual requests per window, *and* more than
 * `peakFactor` × its usual peak window (a job that runs at the top of every
 * hour is not bursting when it runs), once it has `minHistoryMs` of history. One finding per window of burst. Each request
 * counts once (its outcome record; a proxied call's outcome or tunnel).
 */
export class RequestBurstRule implements AnomalyRule {
  readonly name = 'request-burst';
  readonly description = 'Requests per identity far above its own usual rate';
  readonly config: RequestBurstConfig;
  readonly #byIdentity: RateTracker;
  readonly #byToken: RateTracker;

  constructor(config: Partial<RequestBurstConfig> = {}) {
    this.config = { ...REQUEST_BURST_DEFAULTS, ...config };
    this.#byIdentity = new RateTracker(this.config);
    this.#byToken = new RateTracker(this.config);
  }

  observe(observation: AuditObservation, epochMs: number): FindingDraft | undefined {
    const event = observation.event;
    if (event.type !== 'request') return undefined;
    // One count per request: not the before-record of a write, not the per-path records of a multi-path
    // read or of a scanner's report.
    const phase = event.details?.phase;
    if (phase === 'request' || phase === 'path_read' || phase === 'path_report') return undefined;
    const auth = event.auth;
    if (auth.root) return undefined;
    let tracks = this.#byIdentity;
    let key = auth.identity;
    let minRequests = this.config.minRequests;
    let factor = this.config.factor;
    let peakFactor = this.config.peakFactor;
    if (auth.task_id !== undefined && key !== undefined) {
      const role = auth.role;
      const tuning = overridesFor(this.config, role, key);
      if (tuning?.disabled) return undefined;
      minRequests = tuning?.minRequests ?? minRequests;
      factor = tuning?.factor ?? factor;
      peakFactor = tuning?.peakFactor ?? peakFactor;
    } else if (this.config.operators && auth.token_accessor !== undefined) {
      tracks = this.#byToken;
      key = auth.token_accessor;
    } else return undefined;
    const surge = tracks.count(key, observation, epochMs, { floor: minRequests, factor, peakFactor });
    if (!surge) return undefined;
    const { window: track, usual, peak } = surge;
    const { windowMs, baselineMs } = this.config;
    const who = tracks === this.#byToken ? `Operator token ${key}` : `Identity ${key}`;
    return {
      severity: this.config.severity,
      subject: subjectOf(event),
      evidence: track.evidenceSince(epochMs - windowMs),
      explanation:
        `${who} made ${track.sum} requests in the last ${Math.round(windowMs / 1000)} s, against a usual ` +
        `${usual.toFixed(2)} per window over the last ${Math.round(baselineMs / 3_600_000)} h and a usual peak ` +
        `of ${peak.toFixed(0)} (threshold: at least ${minRequests}, over ${factor}× usual and over ` +
        `${peakFactor}× the peak). A workload that suddenly runs an order of magnitude ` +
        'faster than its own history is in a loop, or is being driven by someone else: a prompt-injected agent ' +
        'reading everything it may, a stolen token behind a script. The evidence lists the latest requests; ' +
        'their paths say what was reached. No further finding for this identity until the window has passed.',
    };
  }
}
