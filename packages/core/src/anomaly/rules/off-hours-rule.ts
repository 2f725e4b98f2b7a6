import type { AuditObservation } from '../../audit/audit-log.js';
import { type ActiveWindow, formatActiveHours, withinActiveHours } from '../../tasks/active-hours.js';
import type { AnomalyRule } from '../anomaly-rule.js';
import type { FindingDraft, FindingSeverity } from '../finding.js';
import { evidenceOf, overridesFor, setBounded, subjectOf } from '../rule-support.js';

/** What may be tuned per role (`roles` in {@link OffHoursConfig}). */
export interface OffHoursRoleConfig {
  /** Never fire for this role (it runs at any hour by design). */
  readonly disabled?: boolean;
  readonly minHistoryMs?: number;
  readonly minEvents?: number;
}

export interface OffHoursConfig {
  readonly severity: FindingSeverity;
  /** A subject is judged only after this much history (ms, default 14 d: two of each weekday)… */
  readonly minHistoryMs: number;
  /** …and this many requests (default 200). */
  readonly minEvents: number;
  /**
   * An hour of the week is unusual for a subject when its requests in that
   * hour and the hours either side are at most this share of all its
   * requests (default 0.002: with 200 requests, none at all).
   */
  readonly rareShare: number;
  /** One finding per subject per this long (default 1 h): a night's activity is one alert, not hundreds. */
  readonly cooldownMs: number;
  /** Judge each role against the hours any of its tasks worked (default true). */
  readonly perRole: boolean;
  /** Judge each task identity against its own hours (default true). */
  readonly perIdentity: boolean;
  /** Subjects remembered at most, per kind (default 10,000; the oldest goes, and learns again). */
  readonly maxSubjects: number;
  /** Per-role overrides by role name. */
  readonly roles: { readonly [role: string]: OffHoursRoleConfig };
  /** Per identity (a task's `sub`): its own entry wins over its role's. */
  readonly identities: { readonly [identity: string]: OffHoursRoleConfig };
}

export const OFF_HOURS_DEFAULTS: OffHoursConfig = {
  severity: 'medium',
  minHistoryMs: 14 * 86_400_000,
  minEvents: 200,
  rareShare: 0.002,
  cooldownMs: 3_600_000,
  perRole: true,
  perIdentity: true,
  maxSubjects: 10_000,
  roles: {},
  identities: {},
};

/**
 * A role's declared active hours, or undefined. Synchronous and in memory:
 * the rule runs per event and must not read storage (see DeclaredHours,
 * which keeps such a lookup current from the role service).
 */
export type DeclaredHoursLookup = (role: string) => readonly ActiveWindow[] | undefined;

const HOURS_PER_WEEK = 168;
/** Counts are halved when a subject's total reaches this: old habits fade, and no counter overflows. */
const HALVE_AT = 1_000_000;
const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

interface Baseline {
  readonly first: number;
  total: number;
  /** Requests per hour of the week (UTC, Monday 00:00 first). */
  readonly hours: Uint32Array;
  quietUntil: number;
}

/**
 * `off-hours`: a role or an identity is active at an hour of the week it
 * has (almost) never worked. An inference node that reads the model-store
 * key on weekdays in office hours and then at 03:00 on a Sunday is either
 * running a job nobody planned or being used by someone else.
 *
 * The baseline is learned from the subject's own history: its requests
 * counted per hour of the week (168 counters). Once it has `minHistoryMs`
 * of history and `minEvents` requests, a request in an hour whose
 * neighbourhood (the hour and the hours either side, so a job that starts
 * a few minutes early is not unusual) holds at most `rareShare` of its
 * requests raises a finding, then one per `cooldownMs` at most. Every
 * request is learned (judged first): an hour that becomes usual stops
 * firing. Hours are UTC, so daylight-saving changes move a local schedule
 * by an hour twice a year; the neighbourhood absorbs that. Per event: a
 * division, three array reads and a write.
 */
export class OffHoursRule implements AnomalyRule {
  readonly name = 'off-hours';
  readonly description = 'A role or identity active at an hour of the week it has not worked before';
  readonly config: OffHoursConfig;
  readonly #roles = new Map<string, Baseline>();
  readonly #identities = new Map<string, Baseline>();
  readonly #declared: DeclaredHoursLookup | undefined;
  /** Per role with declared hours: no further finding before this time (the same cooldown). */
  readonly #declaredQuiet = new Map<string, number>();

  /**
   * @param declaredHours the roles' declared windows (`role write --active-hours`): a role that has
   *   them is judged against them instead of its learned hours, from its first request on.
   */
  constructor(config: Partial<OffHoursConfig> = {}, declaredHours?: DeclaredHoursLookup) {
    this.config = { ...OFF_HOURS_DEFAULTS, ...config };
    this.#declared = declaredHours;
    if (!(this.config.rareShare >= 0 && this.config.rareShare < 1)) throw new RangeError('rareShare must be 0..1');
  }

  observe(observation: AuditObservation, epochMs: number): FindingDraft | undefined {
    const event = observation.event;
    if (event.type !== 'request') return undefined;
    // One count per request: not the before-record of a write, not the per-path records of a multi-path
    // read or of a scanner's report.
    const phase = event.details?.phase;
    if (phase === 'request' || phase === 'path_read' || phase === 'path_report') return undefined;
    const auth = event.auth;
    if (auth.task_id === undefined) return undefined;
    const role = auth.role;
    const tuning = overridesFor(this.config, role, auth.identity);
    if (tuning?.disabled) return undefined;
    // Hours since the epoch; 1970-01-01 was a Thursday, so Monday 00:00 UTC is 72 hours on.
    const hour = (Math.floor(epochMs / 3_600_000) + 72) % HOURS_PER_WEEK;
    const slot = hour < 0 ? hour + HOURS_PER_WEEK : hour;
    // A declaration is the operator's word for when the role works: it
    // replaces the learned hours (which go on learning, for the day it is
    // removed) and needs no history, so it holds from the first request.
    const declared = role !== undefined ? this.#declared?.(role) : undefined;
    if (declared !== undefined && role !== undefined) {
      if (this.config.perRole) this.#unusual(this.#roles, role, slot, epochMs, tuning, false);
      if (this.config.perIdentity && auth.identity !== undefined) {
        this.#unusual(this.#identities, auth.identity, slot, epochMs, tuning, false);
      }
      return this.#outsideDeclared(observation, role, declared, epochMs);
    }
    let unusualFor: string | undefined;
    if (this.config.perRole && role !== undefined && this.#unusual(this.#roles, role, slot, epochMs, tuning)) {
      unusualFor = `Role ${role}`;
    }
    const identity = auth.identity;
    if (this.config.perIdentity && identity !== undefined) {
      if (this.#unusual(this.#identities, identity, slot, epochMs, tuning)) {
        unusualFor = unusualFor ? `${unusualFor} and identity ${identity}` : `Identity ${identity}`;
      }
    }
    if (unusualFor === undefined) return undefined;
    const day = DAYS[Math.floor(slot / 24)]!;
    const at = `${day} ${String(slot % 24).padStart(2, '0')}:00–${String((slot % 24) + 1).padStart(2, '0')}:00 UTC`;
    return {
      severity: this.config.severity,
      subject: subjectOf(event),
      evidence: [evidenceOf(observation)],
      explanation:
        `${unusualFor} made a request on ${at}, an hour of the week in which ${unusualFor.includes(' and ') ? 'they have' : 'it has'} ` +
        `(almost) never worked: at most ${this.config.rareShare * 100}% of its requests fell in that hour or the ` +
        'hours either side. Workloads keep their rhythms; activity outside them is a job nobody planned, or the ' +
        "workload's credentials being used by someone else. If it is expected (a new schedule), acknowledge the " +
        'alert: the hour is learned as it is used. If not, look at what the task did and where it came from. ' +
        'No further finding for this subject for the next hour.',
    };
  }

  /** A finding when the request falls outside every declared window of its role (one per cooldown). */
  #outsideDeclared(
    observation: AuditObservation,
    role: string,
    declared: readonly ActiveWindow[],
    epochMs: number,
  ): FindingDraft | undefined {
    if (withinActiveHours(declared, epochMs)) return undefined;
    if (epochMs < (this.#declaredQuiet.get(role) ?? 0)) return undefined;
    setBounded(this.#declaredQuiet, role, epochMs + this.config.cooldownMs, this.config.maxSubjects);
    return {
      severity: this.config.severity,
      subject: subjectOf(observation.event),
      evidence: [evidenceOf(observation)],
      explanation:
        `Role ${role} made a request at ${observation.event.time} (UTC), outside its declared active hours ` +
        `(${formatActiveHours(declared)}). An operator declared when this role works; a request outside it is a job ` +
        "nobody planned, or the workload's credentials being used by someone else. If the schedule changed, " +
        'update the declaration (custos role write … --active-hours). If not, look at what the task did and ' +
        'where it came from. No further finding for this role for the next hour.',
    };
  }

  /** Judges the hour for the subject (true: unusual, and not in cooldown) unless `judge` is false, then learns it. */
  #unusual(
    map: Map<string, Baseline>,
    key: string,
    slot: number,
    epochMs: number,
    tuning: OffHoursRoleConfig | undefined,
    judge = true,
  ): boolean {
    let baseline = map.get(key);
    if (!baseline) {
      baseline = { first: epochMs, total: 0, hours: new Uint32Array(HOURS_PER_WEEK), quietUntil: 0 };
      setBounded(map, key, baseline, this.config.maxSubjects);
    }
    const hours = baseline.hours;
    let unusual = false;
    if (
      judge &&
      baseline.total >= (tuning?.minEvents ?? this.config.minEvents) &&
      epochMs - baseline.first >= (tuning?.minHistoryMs ?? this.config.minHistoryMs)
    ) {
      const near =
        hours[(slot + HOURS_PER_WEEK - 1) % HOURS_PER_WEEK]! + hours[slot]! + hours[(slot + 1) % HOURS_PER_WEEK]!;
      if (near <= this.config.rareShare * baseline.total && epochMs >= baseline.quietUntil) {
        baseline.quietUntil = epochMs + this.config.cooldownMs;
        unusual = true;
      }
    }
    hours[slot]!++;
    baseline.total++;
    if (baseline.total >= HALVE_AT) {
      let total = 0;
      for (let i = 0; i < HOURS_PER_WEEK; i++) {
        hours[i] = hours[i]! >>> 1;
        total += hours[i]!;
      }
      baseline.total = total;
    }
    return unusual;
  }
}
