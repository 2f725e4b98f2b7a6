import { createHash } from 'node:crypto';
import type { EntryStore } from '../ports/storage.js';
import type { DpopReplayCache } from './dpop-replay-cache.js';

const NAMESPACE = 'dpop.jti';
const MARK = new Uint8Array(0);
/**
 * Kept this long beyond the proof's own window: the reaper on *another* node
 * judges expiry by its clock, and a clock running ahead must not delete a row
 * while a node with a slower clock would still accept the proof.
 */
export const DPOP_REPLAY_SKEW_MARGIN_MS = 5 * 60_000;
/** Most reap rounds per call: enough to keep up with thousands of proofs a second at a 5 s reap interval. */
const MAX_REAP_ROUNDS = 50;

/**
 * A {@link DpopReplayCache} in storage, shared by every custos node on the
 * same database: a proof accepted by one node is refused by all the others,
 * and by this node after a restart.
 *
 * The database decides: `putIfAbsent` inserts the key or finds it there, in
 * one statement, so two nodes racing with the same proof cannot both win.
 * Keys are stored as a SHA-256 (fixed size, and a client's `jti` choice never
 * shapes a storage key); the row holds nothing. A row left after its expiry
 * (the reaper not run yet) still refuses the proof, which is too old by then
 * anyway. A storage failure throws, and the proof is refused (fail closed).
 */
export class StorageDpopReplayCache implements DpopReplayCache {
  readonly #entries: Pick<EntryStore, 'putIfAbsent' | 'listExpired' | 'delete'>;
  readonly #now: () => number;

  constructor(entries: Pick<EntryStore, 'putIfAbsent' | 'listExpired' | 'delete'>, now: () => number = Date.now) {
    this.#entries = entries;
    this.#now = now;
  }

  async seen(key: string, expiresAtMs: number): Promise<boolean> {
    const id = createHash('sha256').update(key).digest('hex');
    const expiresAt = Math.ceil(expiresAtMs) + DPOP_REPLAY_SKEW_MARGIN_MS;
    return !(await this.#entries.putIfAbsent(NAMESPACE, id, MARK, { expiresAt }));
  }

  /**
   * Deletes remembered proofs past their window (and the skew margin);
   * returns how many. Keeps going while full batches come back, so the table
   * does not grow under a steady DPoP load. Safe on several nodes at once.
   */
  async reapExpired(batch = 1_000): Promise<number> {
    let reaped = 0;
    for (let round = 0; round < MAX_REAP_ROUNDS; round++) {
      const expired = await this.#entries.listExpired(NAMESPACE, this.#now(), batch);
      for (const id of expired) {
        if (await this.#entries.delete(NAMESPACE, id)) reaped++;
      }
      if (expired.length < batch) break;
    }
    return reaped;
  }
}
