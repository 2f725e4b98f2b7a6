import type { AuditObservation } from '../../audit/audit-log.js';
import type { AnomalyRule } from '../anomaly-rule.js';
import type { FindingDraft, FindingSeverity } from '../finding.js';
import { evidenceOf, overridesFor, setBounded, subjectOf } from '../rule-support.js';

/** What may be tuned per role (`roles` in {@link FirstAccessConfig}). */
export interface FirstAccessRoleConfig {
  /** Never fire for this role (its tasks read new paths by design, e.g. a migration job). */
  readonly disabled?: boolean;
  readonly warmupMs?: number;
  readonly warmupEvents?: number;
}

export interface FirstAccessConfig {
  readonly severity: FindingSeverity;
  /** Policy actions that count as touching a path (default `read`). */
  readonly actions: readonly string[];
  /**
   * Judge the upstreams used through the proxy too (default true): a task
   * that calls an API it never called (`upstream/NAME`, action `use`) is
   * reaching beyond its task as surely as one reading a new secret.
   */
  readonly upstreams: boolean;
  /**
   * Paths under these prefixes are never judged (default `sys/`): custos's
   * own objects are named by ids that are new every time (`sys/tasks/<id>`),
   * so "never used before" says nothing about them.
   */
  readonly ignorePrefixes: readonly string[];
  /**
   * A subject (a role, an identity) learns silently until it has both this
   * much history (ms, default 24 h) since its first access…
   */
  readonly warmupMs: number;
  /** …and this many accesses (default 50): a fresh node does not alarm on everything. */
  readonly warmupEvents: number;
  /** Judge each role against the paths any of its tasks used (default true). */
  readonly perRole: boolean;
  /** Judge each task identity against the paths it used itself (default true). */
  readonly perIdentity: boolean;
  /** Judge operator tokens (by accessor) too (default false: operators browse). Root is never judged. */
  readonly operators: boolean;
  /** Subjects remembered at most, per kind (default 10,000; the oldest goes, and warms up again). */
  readonly maxSubjects: number;
  /** Paths remembered per subject at most (default 5,000); beyond, new paths are neither learned nor judged. */
  readonly maxPathsPerSubject: number;
  /** Paths remembered over all subjects at most (default 1,000,000): the rule's memory bound. */
  readonly maxPathsTotal: number;
  /** Per-role overrides by role name. */
  readonly roles: { readonly [role: string]: FirstAccessRoleConfig };
  /** Per identity (a task's `sub`): its own entry wins over its role's. */
  readonly identities: { readonly [identity: string]: FirstAccessRoleConfig };
}

export const FIRST_ACCESS_DEFAULTS: FirstAccessConfig = {
  severity: 'medium',
  actions: ['read'],
  upstreams: true,
  ignorePrefixes: ['sys/'],
  warmupMs: 24 * 3_600_000,
  warmupEvents: 50,
  perRole: true,
  perIdentity: true,
  operators: false,
  maxSubjects: 10_000,
  maxPathsPerSubject: 5_000,
  maxPathsTotal: 1_000_000,
  roles: {},
  identities: {},
};

interface Baseline {
  readonly first: number;
  count: number;
  readonly paths: Set<string>;
}

/**
 * `first-access`: a role or an identity touched a secret path — or called
 * an upstream through the proxy — it has never used before. Workloads read
 * the same few secrets and call the same few APIs every time; the first
 * touch of another one is what a compromised or misdirected agent does.
 *
 * The baseline is the set of paths each subject used, learned from the
 * stream itself (and from stored history when the engine is warmed). Until
 * a subject is past its warm-up (time and count), its new paths are learned
 * silently. A path raises one finding and is learned: the next read of it is
 * normal. Per event: a map and a set lookup per subject kind.
 */
export class FirstAccessRule implements AnomalyRule {
  readonly name = 'first-access';
  readonly description = 'A role or identity accessed a secret path or upstream it has never used';
  readonly config: FirstAccessConfig;
  readonly #actions: ReadonlySet<string>;
  readonly #roles = new Map<string, Baseline>();
  readonly #identities = new Map<string, Baseline>();
  readonly #operators = new Map<string, Baseline>();
  /** Paths held over all subjects. */
  #pathsTotal = 0;

  constructor(config: Partial<FirstAccessConfig> = {}) {
    this.config = { ...FIRST_ACCESS_DEFAULTS, ...config };
    this.#actions = new Set(this.config.actions);
  }

  observe(observation: AuditObservation, epochMs: number): FindingDraft | undefined {
    const event = observation.event;
    if (event.type !== 'request' || event.decision !== 'allow' || event.status >= 400) return undefined;
    const path = event.request.path;
    const action = event.request.action;
    if (path === undefined || action === undefined) return undefined;
    const phase = event.details?.phase;
    if (event.details?.proxy !== undefined) {
      // A proxied call: the use of an upstream is the call going out (its `request` record, written before
      // anything is sent) or a CONNECT tunnel opened. Its `response` record is the upstream's answer — a
      // second record of the same use — and a refused call is never allowed.
      if (!this.config.upstreams || action !== 'use') return undefined;
      if (phase !== 'request' && phase !== 'tunnel') return undefined;
    } else {
      // The outcome only (a write is recorded before and after), and only served requests.
      if (phase === 'request' || !this.#actions.has(action)) return undefined;
    }
    for (const prefix of this.config.ignorePrefixes) if (path.startsWith(prefix)) return undefined;
    const auth = event.auth;
    if (auth.root) return undefined;
    const newFor: string[] = [];
    if (auth.task_id !== undefined) {
      const role = auth.role;
      const tuning = overridesFor(this.config, role, auth.identity);
      if (tuning?.disabled) return undefined;
      if (this.config.perRole && role !== undefined && this.#isNew(this.#roles, role, path, epochMs, tuning)) {
        newFor.push(`role ${role}`);
      }
      const identity = auth.identity;
      if (
        this.config.perIdentity &&
        identity !== undefined &&
        this.#isNew(this.#identities, identity, path, epochMs, tuning)
      ) {
        newFor.push(`identity ${identity}`);
      }
    } else if (this.config.operators && auth.token_accessor !== undefined) {
      if (this.#isNew(this.#operators, auth.token_accessor, path, epochMs, undefined)) {
        newFor.push(`operator token ${auth.token_accessor}`);
      }
    }
    if (newFor.length === 0) return undefined;
    return {
      severity: this.config.severity,
      subject: subjectOf(event),
      evidence: [evidenceOf(observation)],
      explanation:
        `${cap(newFor.join(' and '))} ${newFor.length > 1 ? 'have' : 'has'} never used ${path} before ` +
        `(action ${action}${action === 'use' ? ', through the proxy' : ''}); the request was allowed by policy. ` +
        'Workloads usually read the same few secrets and call the same few APIs on every run, so a first access ' +
        'is either a new version of the workload or an agent reaching beyond its usual task (a prompt ' +
        'injection, a stolen token). If it is expected, acknowledge the alert: the path is now part of the ' +
        'baseline. If not, look at the task that made the request and its parents.',
    };
  }

  /** Learns `path` for the subject; true when it was new and the subject is past its warm-up. */
  #isNew(
    map: Map<string, Baseline>,
    key: string,
    path: string,
    epochMs: number,
    tuning: FirstAccessRoleConfig | undefined,
  ): boolean {
    let baseline = map.get(key);
    if (!baseline) {
      baseline = { first: epochMs, count: 0, paths: new Set() };
      const evicted = setBounded(map, key, baseline, this.config.maxSubjects);
      if (evicted) this.#pathsTotal -= evicted.paths.size;
    }
    const warm =
      baseline.count >= (tuning?.warmupEvents ?? this.config.warmupEvents) &&
      epochMs - baseline.first >= (tuning?.warmupMs ?? this.config.warmupMs);
    baseline.count++;
    if (baseline.paths.has(path)) return false;
    // Full: neither learned nor judged. Judging a path it cannot learn would
    // raise a finding on every read of it; an identity that fills the bound
    // read thousands of new paths, and its first ones past warm-up raised findings.
    if (baseline.paths.size >= this.config.maxPathsPerSubject || this.#pathsTotal >= this.config.maxPathsTotal) {
      return false;
    }
    baseline.paths.add(path);
    this.#pathsTotal++;
    return warm;
  }
}

function cap(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
