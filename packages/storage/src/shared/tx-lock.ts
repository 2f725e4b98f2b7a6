/**
 * A FIFO async mutex. It is cheap to ask whether it is held, so callers can
 * skip it entirely (no promise, no microtask hop) on the hot path when it is
 * free.
 */
export class TxLock {
  #held = false;
  readonly #waiters: Array<() => void> = [];

  /** True while someone holds the lock. */
  get held(): boolean {
    return this.#held;
  }

  /** Resolves once the caller holds the lock; callers are served in order. */
  acquire(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Hands the lock to the next waiter, or frees it. */
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#held = false;
  }
}
