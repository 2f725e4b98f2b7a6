import type { AuditObservation } from '../../audit/audit-log.js';
import type { AnomalyRule } from '../anomaly-rule.js';
import type { FindingDraft, FindingEvidence, FindingSeverity } from '../finding.js';
import { evidenceOf, overridesFor, refusedTaskOf, setBounded, subjectOf } from '../rule-support.js';

/** What may be tuned per role or identity (`roles`, `identities` in {@link DeniedSpikeConfig}). */
export interface DeniedSpikeRoleConfig {
  readonly disabled?: boolean;
  readonly minDenied?: number;
  readonly factor?: number;
}

export interface DeniedSpikeConfig {
  readonly severity: FindingSeverity;
  /** The sliding window denials are counted over (ms, default 60 s). */
  readonly windowMs: number;
  /** Buckets the window slides by (default 6: 10 s steps). */
  readonly buckets: number;
  /** Never fire below this many denials in the window (default 20). */
  readonly minDenied: number;
  /** Fire when the window holds this many times the identity's usual denials per window (default 10). */
  readonly factor: number;
  /** How far back the usual rate reaches (ms, default 6 h): the half-life-like span of the moving average. */
  readonly baselineMs: number;
  /** An identity seen for less than this (ms, default 15 min) has no baseline yet and never fires. */
  readonly minHistoryMs: number;
  /** Identities (or source addresses) tracked at most (default 10,000; the oldest goes first). */
  readonly maxTracked: number;
  /** Per role, for the tasks of that role (and the dead tokens they leave). */
  readonly roles: { readonly [role: string]: DeniedSpikeRoleConfig };
  /** Per identity (a task's `sub`): its own entry wins over its role's. */
  readonly identities: { readonly [identity: string]: DeniedSpikeRoleConfig };
}

export const DENIED_SPIKE_DEFAULTS: DeniedSpikeConfig = {
  severity: 'medium',
  windowMs: 60_000,
  buckets: 6,
  minDenied: 20,
  factor: 10,
  baselineMs: 6 * 3_600_000,
  minHistoryMs: 15 * 60_000,
  maxTracked: 10_000,
  roles: {},
  identities: {},
};

interface Track {
  readonly first: number;
  /** Absolute bucket number (epoch ms / bucket length) of the newest bucket. */
  bucket: number;
  /** Denials per bucket, a ring over the window. */
  readonly ring: number[];
  /** Sum of the ring: denials in the sliding window. */
  sum: number;
  /** Moving average of denials per closed bucket: the baseline (before bias correction). */
  mean: number;
  /**
   * 1 − (1 − α)^(buckets closed): the weight the average has gathered. The
   * average starts at 0, so early on it is divided by this (as Adam does) —
   * otherwise a steady rate would look like a spike until hours have passed.
   */
  weight: number;
  /** No second finding before this time: one per window of spike. */
  quietUntil: number;
  /**
   * The evidence: the newest denial records, at most {@link EVIDENCE_MAX},
   * kept as chain positions (not the events: 10,000 identities × 10 whole
   * events would be a lot of memory to hold for a finding that may never come).
   */
  readonly recent: { readonly at: number; readonly evidence: FindingEvidence }[];
}

const EVIDENCE_MAX = 10;

/**
 * `denied-spike`: an identity is refused far more often than it usually is.
 * An agent probing what it may read, a stolen credential tried against
 * paths its owner never used, or an unauthenticated caller guessing tokens
 * (keyed by source address, since it has no identity) all look like this.
 *
 * Per identity: a ring of `buckets` counters slides over `windowMs`; each
 * closed bucket is folded into an exponential moving average (the
 * baseline); the rule fires when the window holds at least `minDenied`
 * denials and more than `factor` × the baseline per window — and only once
 * the identity has `minHistoryMs` of history, so a fresh one is not judged
 * on nothing. Every event of the identity (allowed too) moves its clock, so
 * quiet periods lower the baseline. O(buckets) per event at most, no storage.
 */
export class DeniedSpikeRule implements AnomalyRule {
  readonly name = 'denied-spike';
  readonly description = 'Denied requests per identity far above its own baseline';
  readonly config: DeniedSpikeConfig;
  /** Per kind of key, so no key string is built per event: identities, operator token accessors, source addresses. */
  readonly #byIdentity = new Map<string, Track>();
  readonly #byToken = new Map<string, Track>();
  readonly #byAddress = new Map<string, Track>();
  readonly #bucketMs: number;
  readonly #alpha: number;

  constructor(config: Partial<DeniedSpikeConfig> = {}) {
    this.config = { ...DENIED_SPIKE_DEFAULTS, ...config };
    const { windowMs, buckets, baselineMs } = this.config;
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > 60) throw new RangeError('buckets must be 1..60');
    if (!(windowMs > 0) || !(baselineMs >= windowMs)) throw new RangeError('need 0 < windowMs ≤ baselineMs');
    this.#bucketMs = windowMs / buckets;
    this.#alpha = Math.min(1, this.#bucketMs / baselineMs);
  }

  observe(observation: AuditObservation, epochMs: number): FindingDraft | undefined {
    const event = observation.event;
    if (event.type !== 'request') return undefined;
    // A state-changing request is recorded twice (before and after): count the outcome only.
    if (event.details?.phase === 'request') return undefined;
    // Who: a task's identity, an operator token, the task a genuine but refused
    // token named, else (no verified identity at all) the source address.
    const auth = event.auth;
    let tracks = this.#byIdentity;
    const refused = auth.identity === undefined ? refusedTaskOf(event) : undefined;
    let key = auth.identity ?? refused?.identity;
    const tuning = key === undefined ? undefined : overridesFor(this.config, auth.role ?? refused?.role, key);
    if (tuning?.disabled) return undefined;
    if (key === undefined && auth.token_accessor !== undefined) {
      tracks = this.#byToken;
      key = auth.token_accessor;
    }
    if (key === undefined) {
      tracks = this.#byAddress;
      key = event.request.source_ip;
      if (key === undefined) return undefined;
    }
    const bucket = Math.floor(epochMs / this.#bucketMs);
    let track = tracks.get(key);
    if (!track) {
      track = {
        first: epochMs,
        bucket,
        ring: new Array<number>(this.config.buckets).fill(0),
        sum: 0,
        mean: 0,
        weight: 0,
        quietUntil: 0,
        recent: [],
      };
      setBounded(tracks, key, track, this.config.maxTracked);
    } else this.#advance(track, bucket);
    if (event.decision !== 'deny') return undefined;
    // An event older than the window (a clock stepped back, history fed twice) is not counted in it.
    if (bucket <= track.bucket - this.config.buckets) return undefined;
    track.ring[Math.min(bucket, track.bucket) % this.config.buckets]!++;
    track.sum++;
    track.recent.push({ at: epochMs, evidence: evidenceOf(observation) });
    if (track.recent.length > EVIDENCE_MAX) track.recent.shift();
    const { minHistoryMs, windowMs, buckets } = this.config;
    const minDenied = tuning?.minDenied ?? this.config.minDenied;
    const factor = tuning?.factor ?? this.config.factor;
    const usual = track.weight > 0 ? (track.mean / track.weight) * buckets : 0;
    if (track.sum < minDenied || track.sum <= factor * usual) return undefined;
    if (epochMs - track.first < minHistoryMs || epochMs < track.quietUntil) return undefined;
    track.quietUntil = epochMs + windowMs;
    const evidence = track.recent.filter((r) => r.at > epochMs - windowMs).map((r) => r.evidence);
    const who =
      tracks === this.#byAddress
        ? `Callers with no verified identity from ${key}`
        : tracks === this.#byToken
          ? `Operator token ${key}`
          : `Identity ${key}`;
    return {
      severity: this.config.severity,
      subject: subjectOf(event),
      evidence,
      explanation:
        `${who} had ${track.sum} requests denied in the last ${Math.round(windowMs / 1000)} s, against a usual ` +
        `${usual.toFixed(2)} per window over the last ${Math.round(this.config.baselineMs / 3_600_000)} h ` +
        `(threshold: at least ${minDenied}, and over ${factor}× usual). A workload that suddenly meets many ` +
        'refusals is probing for what it may reach (a prompt-injected agent, a stolen credential tried on new ' +
        'paths) or is guessing credentials. The evidence lists the latest denied requests; their paths and error ' +
        'codes say what was tried. No further finding for this identity until the window has passed.',
    };
  }

  /** Moves the ring forward to `bucket`, folding each closed bucket into the baseline. */
  #advance(track: Track, bucket: number): void {
    const steps = bucket - track.bucket;
    // A time behind the newest bucket (a clock stepped back) does not move the ring back.
    if (steps <= 0) return;
    const n = this.config.buckets;
    // The bucket just closed, then steps - 1 empty ones (folded in one step).
    track.mean += this.#alpha * (track.ring[track.bucket % n]! - track.mean);
    track.weight += this.#alpha * (1 - track.weight);
    if (steps > 1) {
      const decay = (1 - this.#alpha) ** (steps - 1);
      track.mean *= decay;
      track.weight = 1 - (1 - track.weight) * decay;
    }
    for (let i = 1; i <= Math.min(steps, n); i++) {
      const slot = (track.bucket + i) % n;
      track.sum -= track.ring[slot]!;
      track.ring[slot] = 0;
    }
    track.bucket = bucket;
  }
}
