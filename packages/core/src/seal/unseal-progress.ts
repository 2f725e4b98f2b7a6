import { timingSafeEqual } from 'node:crypto';
import { shareX } from './shamir-shares.js';

/** What {@link UnsealProgress.add} made of a share. */
export type ShareOutcome = 'added' | 'duplicate' | 'conflict';

/**
 * The shares submitted so far towards one unseal, held only in memory.
 * Shares are told apart by their x-coordinate: resubmitting the same share
 * does not count twice (otherwise one operator could unseal alone by
 * pasting their share `threshold` times), and a different share with an x
 * already seen is a conflict (one of the two is wrong).
 */
export class UnsealProgress {
  readonly #shares: Buffer[] = [];

  get count(): number {
    return this.#shares.length;
  }

  /** Takes ownership of `share`: kept when added, zeroed otherwise. */
  add(share: Buffer): ShareOutcome {
    const x = shareX(share);
    const same = this.#shares.find((s) => shareX(s) === x);
    if (same === undefined) {
      this.#shares.push(share);
      return 'added';
    }
    // Constant-time: the stored share is secret material.
    const outcome = timingSafeEqual(same, share) ? 'duplicate' : 'conflict';
    share.fill(0);
    return outcome;
  }

  /** The collected shares (still owned by this object). */
  shares(): readonly Buffer[] {
    return this.#shares;
  }

  /** Zeroes every collected share and starts over. */
  reset(): void {
    for (const s of this.#shares) s.fill(0);
    this.#shares.length = 0;
  }
}
