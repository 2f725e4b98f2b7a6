import type { AuditObservation } from '../../audit/audit-log.js';
import type { AnomalyRule } from '../anomaly-rule.js';
import type { FindingDraft, FindingSeverity } from '../finding.js';
import { RateTracker } from '../rate-window.js';
import { overridesFor, subjectOf } from '../rule-support.js';

/** What may be tuned per role (`roles` in {@link CredentialRateConfig}). */
export interface CredentialRateRoleConfig {
  /** Never fire for this role (it fans out by design: one database login per worker). */
  readonly disabled?: boolean;
  readonly minIssued?: number;
  readonly factor?: number;
  readonly peakFactor?: number;
}

export interface CredentialRateConfig {
  readonly severity: FindingSeverity;
  /** The sliding window issues are counted over (ms, default 1 h). */
  readonly windowMs: number;
  /** Buckets the window slides by (default 6: 10 min steps). */
  readonly buckets: number;
  /** Never fire below this many credentials issued in the window (default 20). */
  readonly minIssued: number;
  /** Fire when the window holds more than this many times the role's usual issues per window (default 5)… */
  readonly factor: number;
  /** How far back the usual rate reaches (ms, default 24 h). */
  readonly baselineMs: number;
  /** …and more than this many times the role's usual peak window (default 3). */
  readonly peakFactor: number;
  /** How slowly the usual peak fades (ms, default 7 d). */
  readonly peakMs: number;
  /** A role seen issuing for less than this (ms, default 24 h) has no baseline yet and never fires. */
  readonly minHistoryMs: number;
  /** Judge operator tokens (by accessor) too (default false). Root never. */
  readonly operators: boolean;
  /** Roles tracked at most (default 10,000). */
  readonly maxTracked: number;
  /** Per-role overrides by role name. */
  readonly roles: { readonly [role: string]: CredentialRateRoleConfig };
  /** Per identity (a task's `sub`): its own entry wins over its role's. */
  readonly identities: { readonly [identity: string]: CredentialRateRoleConfig };
}

export const CREDENTIAL_RATE_DEFAULTS: CredentialRateConfig = {
  severity: 'medium',
  windowMs: 3_600_000,
  buckets: 6,
  minIssued: 20,
  factor: 5,
  baselineMs: 24 * 3_600_000,
  peakFactor: 3,
  peakMs: 7 * 86_400_000,
  minHistoryMs: 24 * 3_600_000,
  operators: false,
  maxTracked: 10_000,
  roles: {},
  identities: {},
};

/**
 * `credential-rate`: a role's tasks are issued dynamic credentials
 * (`POST /v1/creds/{engine}/{role}`) far more often than the role's
 * history. Each issue is a fresh database login; a role that suddenly asks
 * for many is harvesting logins (to keep access after its tasks end, or to
 * hand them on), or is stuck in a loop that exhausts the database's
 * connections.
 *
 * Per role (all its tasks together: workers of one role come and go) a
 * {@link RateTracker} window slides over `windowMs`; the rule fires at `minIssued`
 * issues or more in the window, above `factor` × the role's usual rate and
 * `peakFactor` × its usual peak window, once the role has `minHistoryMs`
 * of history. Only credentials actually issued count (the outcome record,
 * allowed, below 400); refusals are `denied-spike`'s.
 */
export class CredentialRateRule implements AnomalyRule {
  readonly name = 'credential-rate';
  readonly description = 'Dynamic credentials issued to a role far more often than its history';
  readonly config: CredentialRateConfig;
  readonly #byRole: RateTracker;
  readonly #byToken: RateTracker;

  constructor(config: Partial<CredentialRateConfig> = {}) {
    this.config = { ...CREDENTIAL_RATE_DEFAULTS, ...config };
    this.#byRole = new RateTracker(this.config);
    this.#byToken = new RateTracker(this.config);
  }

  observe(observation: AuditObservation, epochMs: number): FindingDraft | undefined {
    const event = observation.event;
    if (event.type !== 'request' || event.decision !== 'allow' || event.status >= 400) return undefined;
    const request = event.request;
    // The creds route's outcome record (its before-record has phase `request` and no status yet).
    if (request.action !== 'issue' || !request.route.startsWith('/v1/creds/')) return undefined;
    if (event.details?.phase === 'request') return undefined;
    const auth = event.auth;
    if (auth.root) return undefined;
    let tracks = this.#byRole;
    let key = auth.role;
    let { minIssued, factor, peakFactor } = this.config;
    if (auth.task_id !== undefined && key !== undefined) {
      const tuning = overridesFor(this.config, key, auth.identity);
      if (tuning?.disabled) return undefined;
      minIssued = tuning?.minIssued ?? minIssued;
      factor = tuning?.factor ?? factor;
      peakFactor = tuning?.peakFactor ?? peakFactor;
    } else if (this.config.operators && auth.token_accessor !== undefined) {
      tracks = this.#byToken;
      key = auth.token_accessor;
    } else return undefined;
    const surge = tracks.count(key, observation, epochMs, { floor: minIssued, factor, peakFactor });
    if (!surge) return undefined;
    const { window: track, usual, peak } = surge;
    const { windowMs } = this.config;
    const who = tracks === this.#byToken ? `Operator token ${key}` : `Role ${key}`;
    return {
      severity: this.config.severity,
      subject: subjectOf(event),
      evidence: track.evidenceSince(epochMs - windowMs),
      explanation:
        `${who} was issued ${track.sum} dynamic credentials in the last ${Math.round(windowMs / 60_000)} min ` +
        `(latest: ${request.path ?? 'unknown'}), against a usual ${usual.toFixed(2)} per window and a usual peak of ` +
        `${peak.toFixed(0)} (threshold: at least ${minIssued}, over ${factor}× usual and over ${peakFactor}× the ` +
        'peak). Each issue is a new database login. A role that suddenly collects many is harvesting logins ' +
        '(to keep access after its tasks end, or to pass them on) or is stuck in a loop exhausting the ' +
        "database's connections. The evidence lists the latest issues; revoke the leases you do not expect " +
        '(`custos lease revoke`) and look at the tasks that asked.',
    };
  }
}
