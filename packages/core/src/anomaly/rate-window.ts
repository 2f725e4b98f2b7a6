import type { AuditObservation } from '../audit/audit-log.js';
import type { FindingEvidence } from './finding.js';
import { setBounded } from './rule-support.js';

/** Evidence kept per subject: the newest records counted. */
export const RATE_EVIDENCE_MAX = 10;

/**
 * One subject's event rate: a ring of `buckets` counters sliding over a
 * window, and an exponential moving average of the closed buckets (the
 * subject's own usual rate). The rate rules (`request-burst`,
 * `credential-rate`) keep one per subject; `denied-spike` is the same
 * algorithm, written before this was shared.
 *
 * The average starts at 0, so it is divided by the weight it has gathered
 * (1 − (1 − α)^closed, as Adam does): otherwise a steady rate would look
 * like a burst until hours have passed. Empty stretches are folded in one
 * step. O(buckets) per event at most; nothing is allocated per event — the
 * evidence ring holds the records' own strings.
 */
export class RateWindow {
  /** When the subject was first seen (its history starts here). */
  readonly first: number;
  /** Absolute bucket number (epoch ms / bucket length) of the newest bucket. */
  #bucket: number;
  readonly #ring: Uint32Array;
  /** Sum of the ring: events in the sliding window. */
  sum = 0;
  #mean = 0;
  #weight = 0;
  /**
   * The highest window sum seen at a bucket's close, decaying slowly: the
   * usual *peak*. An average hides rhythm — a job that reads 40 secrets at
   * the top of every hour averages under one a minute — so the rules also
   * require a burst to be well above the peaks the subject already had.
   */
  #peak = 0;
  /**
   * The peak as it was at each bucket's close. A burst must be compared with
   * the peak from *before* its window: the running peak takes in the burst's
   * own first buckets as they close, and a burst spread over the window would
   * then always be under a multiple of itself.
   */
  readonly #peaks: Float64Array;
  /** No second finding before this time. */
  quietUntil = 0;
  readonly #seq: number[] = [];
  readonly #hash: string[] = [];
  readonly #requestId: (string | undefined)[] = [];
  readonly #at: number[] = [];
  #next = 0;

  constructor(epochMs: number, bucket: number, buckets: number) {
    this.first = epochMs;
    this.#bucket = bucket;
    this.#ring = new Uint32Array(buckets);
    this.#peaks = new Float64Array(buckets);
  }

  /**
   * Moves the ring forward to `bucket`, folding each closed bucket into the
   * average (weight `alpha` per bucket) and each closing window's sum into
   * the peak (which keeps `peakKeep` of itself per bucket).
   */
  advance(bucket: number, alpha: number, peakKeep: number): void {
    const steps = bucket - this.#bucket;
    // A time behind the newest bucket (a clock stepped back) does not move the ring back.
    if (steps <= 0) return;
    const ring = this.#ring;
    const n = ring.length;
    this.#mean += alpha * (ring[this.#bucket % n]! - this.#mean);
    this.#weight += alpha * (1 - this.#weight);
    if (steps > 1) {
      const decay = (1 - alpha) ** (steps - 1);
      this.#mean *= decay;
      this.#weight = 1 - (1 - this.#weight) * decay;
    }
    // Each bucket that closes: the window ending with it may be a new peak; then its oldest slot empties.
    for (let i = 1; i <= Math.min(steps, n); i++) {
      this.#peak = Math.max(this.#peak * peakKeep, this.sum);
      this.#peaks[(this.#bucket + i - 1) % n] = this.#peak;
      const slot = (this.#bucket + i) % n;
      this.sum -= ring[slot]!;
      ring[slot] = 0;
    }
    if (steps > n) {
      // A long quiet stretch: the ring is empty, the peak only fades.
      this.#peak *= peakKeep ** (steps - n);
      this.#peaks.fill(this.#peak);
    }
    this.#bucket = bucket;
  }

  /**
   * Counts one event in `bucket` (after {@link advance}); false when it is
   * older than the window (a clock stepped back, history fed twice) and so
   * not counted.
   */
  add(bucket: number, observation: AuditObservation, epochMs: number): boolean {
    const n = this.#ring.length;
    if (bucket <= this.#bucket - n) return false;
    this.#ring[Math.min(bucket, this.#bucket) % n]!++;
    this.sum++;
    const i = this.#next;
    this.#seq[i] = observation.seq;
    this.#hash[i] = observation.hash;
    this.#requestId[i] = observation.event.request_id;
    this.#at[i] = epochMs;
    this.#next = (i + 1) % RATE_EVIDENCE_MAX;
    return true;
  }

  /** The usual number of events per window (0 before any bucket closed). */
  usualPerWindow(): number {
    return this.#weight > 0 ? (this.#mean / this.#weight) * this.#ring.length : 0;
  }

  /**
   * The usual peak: the highest window that ended before the current window
   * began, decayed by its age. Its slot is the current bucket's: written when
   * the bucket one window back closed, overwritten when this one closes.
   */
  usualPeak(): number {
    return this.#peaks[this.#bucket % this.#ring.length]!;
  }

  /** The newest counted records since `sinceMs`, oldest first: a finding's evidence. */
  evidenceSince(sinceMs: number): FindingEvidence[] {
    const out: FindingEvidence[] = [];
    const held = this.#seq.length;
    for (let k = 0; k < held; k++) {
      const i = (this.#next + k) % held;
      if (this.#at[i]! <= sinceMs) continue;
      const request_id = this.#requestId[i];
      out.push(
        request_id
          ? { seq: this.#seq[i]!, hash: this.#hash[i]!, request_id }
          : { seq: this.#seq[i]!, hash: this.#hash[i]! },
      );
    }
    return out;
  }
}

/** What every rate rule's windows share (ms, except `buckets` and `maxTracked`). */
export interface RateShape {
  readonly windowMs: number;
  readonly buckets: number;
  readonly baselineMs: number;
  readonly peakMs: number;
  readonly minHistoryMs: number;
  readonly maxTracked: number;
}

/** When a window is a surge: at least `floor` events, over `factor` × the usual rate and `peakFactor` × the usual peak. */
export interface RateThresholds {
  readonly floor: number;
  readonly factor: number;
  readonly peakFactor: number;
}

/** A surge found by {@link RateTracker.count}: the subject's window, and what it was compared with. */
export interface RateSurge {
  readonly window: RateWindow;
  readonly usual: number;
  readonly peak: number;
}

/**
 * The rate rules' common mechanism: one {@link RateWindow} per subject
 * (bounded: the oldest subject is forgotten first and warms up again), and
 * the test of a window against the subject's own history. A surge is
 * reported once per window (the subject is then quiet for `windowMs`), and
 * never before the subject has `minHistoryMs` of history.
 */
export class RateTracker {
  readonly #shape: RateShape;
  readonly #windows = new Map<string, RateWindow>();
  readonly #bucketMs: number;
  readonly #alpha: number;
  readonly #peakKeep: number;

  constructor(shape: RateShape) {
    const { windowMs, buckets, baselineMs, peakMs } = shape;
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > 60) throw new RangeError('buckets must be 1..60');
    if (!(windowMs > 0) || !(baselineMs >= windowMs)) throw new RangeError('need 0 < windowMs ≤ baselineMs');
    if (!(peakMs >= windowMs)) throw new RangeError('need windowMs ≤ peakMs');
    this.#shape = shape;
    this.#bucketMs = windowMs / buckets;
    this.#alpha = Math.min(1, this.#bucketMs / baselineMs);
    this.#peakKeep = 1 - this.#bucketMs / peakMs;
  }

  /** Counts one event of `key`; the surge when its window is one (see the class comment), else undefined. */
  count(key: string, observation: AuditObservation, epochMs: number, limits: RateThresholds): RateSurge | undefined {
    const { buckets, maxTracked, minHistoryMs, windowMs } = this.#shape;
    const bucket = Math.floor(epochMs / this.#bucketMs);
    let window = this.#windows.get(key);
    if (!window) {
      window = new RateWindow(epochMs, bucket, buckets);
      setBounded(this.#windows, key, window, maxTracked);
    } else window.advance(bucket, this.#alpha, this.#peakKeep);
    if (!window.add(bucket, observation, epochMs)) return undefined;
    if (window.sum < limits.floor) return undefined;
    const usual = window.usualPerWindow();
    const peak = window.usualPeak();
    if (window.sum <= limits.factor * usual || window.sum <= limits.peakFactor * peak) return undefined;
    if (epochMs - window.first < minHistoryMs || epochMs < window.quietUntil) return undefined;
    window.quietUntil = epochMs + windowMs;
    return { window, usual, peak };
  }
}
