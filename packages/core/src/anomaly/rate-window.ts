import type { AuditObservation } from '../audit/audit-log.js';
import type { FindingEvidence } from './finding.js';

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
