import type { CustosEvent } from './rotation-types.js';

/**
 * In-process publish/subscribe for change events. Each node tells its own
 * subscribers about the rotations it ran; a subscriber connected to another
 * node of an HA cluster learns of it on its next read (see the report).
 */
export class EventBus {
  readonly #listeners = new Set<(event: CustosEvent) => void>();

  /** Subscribes; returns the unsubscribe function. */
  subscribe(listener: (event: CustosEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish(event: CustosEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // One broken subscriber must not stop the others.
      }
    }
  }

  get size(): number {
    return this.#listeners.size;
  }
}
