import { createHash } from 'node:crypto';
import type { EntryStore } from '../ports/storage.js';
import type { DpopReplayCache } from './dpop-replay-cache.js';

const NAMESPACE = 'dpop.jti';
const MARK = new Uint8Array(0);

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
    return !(await this.#entries.putIfAbsent(NAMESPACE, id, MARK, { expiresAt: Math.ceil(expiresAtMs) }));
  }

  /** Deletes remembered proofs past their window; returns how many. Safe on several nodes at once. */
  async reapExpired(limit = 1_000): Promise<number> {
    let reaped = 0;
    for (const id of await this.#entries.listExpired(NAMESPACE, this.#now(), limit)) {
      if (await this.#entries.delete(NAMESPACE, id)) reaped++;
    }
    return reaped;
  }
}
