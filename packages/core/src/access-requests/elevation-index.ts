import { randomBytes } from 'node:crypto';
import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import type { EntryStore } from '../ports/storage.js';
import type { ActiveElevation } from './access-request-types.js';

/** One sealed entry per elevation in force, keyed by request id, with its end as the entry's expiry. */
export const ELEVATION_NAMESPACE = 'jit.elevation';
const REVISION_NS = 'sys';
const REVISION_KEY = 'jit.elevation.revision';
/** Elevations a deployment holds at once at most: the index stays small, a load stays one bounded scan. */
export const MAX_ACTIVE_ELEVATIONS = 10_000;

/**
 * The elevations in force, held in memory by task id, so the check made on
 * every request of every task is a map lookup per chain level — no storage
 * read, no decryption — for the (vast) majority of tasks that hold none.
 *
 * **Kept consistent like the policies are** (see PolicyService): every
 * change writes a new random revision marker; each node's refresh tick (one
 * read a second) reloads when the marker moved. An elevation approved on
 * another node is therefore seen here within a tick — late, never early:
 * the stale state is *less* privilege.
 *
 * **Revocation is not left to the tick.** When the index says a task may be
 * elevated, {@link confirm} reads the elevation's entry from storage before
 * it is used (as the task revocation check reads the end markers), so a
 * `request revoke` on any node — which deletes the entry — ends the
 * elevation on every node from the next request. Ending or revoking the
 * task needs nothing here: its tokens are refused by the chain check first.
 */
export class ElevationIndex {
  readonly #entries: EntryStore;
  readonly #cipher: Cipher;
  readonly #now: () => number;
  readonly #confirm: boolean;
  #byTask = new Map<string, ActiveElevation[]>();
  #revision: string | undefined;
  /** Bumped by every local change: a load begun before one does not overwrite it with older storage. */
  #generation = 0;

  constructor(deps: {
    entries: EntryStore;
    cipher: Cipher;
    now?: () => number;
    /**
     * Whether an elevation found in memory is confirmed in storage before
     * use (default true). Only a storage no other node writes may skip it —
     * the embedded SQLite file, which the server opens exclusively: every
     * revocation is then made by this node, which updates the index in the
     * same step, so memory is the truth and the read would only cost time.
     */
    confirm?: boolean;
  }) {
    this.#entries = deps.entries;
    this.#cipher = deps.cipher;
    this.#now = deps.now ?? Date.now;
    this.#confirm = deps.confirm ?? true;
  }

  /** Rebuilds the index from storage at once (a reader never sees half an index). */
  async load(): Promise<number> {
    const generation = this.#generation;
    const revision = await this.#readRevision();
    const now = this.#now();
    const next = new Map<string, ActiveElevation[]>();
    let count = 0;
    for (const entry of await this.#entries.scan(ELEVATION_NAMESPACE, '', { limit: MAX_ACTIVE_ELEVATIONS })) {
      if (entry.expiresAt !== null && entry.expiresAt <= now) continue;
      const elevation = await openJson<ActiveElevation>(this.#cipher, ELEVATION_NAMESPACE, entry.key, entry.value);
      // The key is the request id: an entry moved to another key fails to open (AAD), a renamed one is skipped.
      if (elevation.request_id !== entry.key) continue;
      push(next, elevation);
      count++;
    }
    if (generation === this.#generation) {
      this.#byTask = next;
      this.#revision = revision;
    }
    return count;
  }

  /** Reloads when another node changed an elevation since the last load. One read when nothing changed. */
  async refresh(): Promise<boolean> {
    if ((await this.#readRevision()) === this.#revision) return false;
    await this.load();
    return true;
  }

  /** Writes an elevation (inside the caller's transaction) — call {@link added} once it committed. */
  async write(entries: EntryStore, elevation: ActiveElevation): Promise<void> {
    await entries.put(
      ELEVATION_NAMESPACE,
      elevation.request_id,
      sealJson(this.#cipher, ELEVATION_NAMESPACE, elevation.request_id, elevation),
      { expiresAt: elevation.expires_at },
    );
    await this.#bumpRevision(entries);
  }

  /** Deletes an elevation's entry (inside the caller's transaction); true when there was one. */
  async erase(entries: EntryStore, requestId: string): Promise<boolean> {
    const removed = await entries.delete(ELEVATION_NAMESPACE, requestId);
    if (removed) await this.#bumpRevision(entries);
    return removed;
  }

  /** This node's view after its own committed write. */
  added(elevation: ActiveElevation): void {
    this.#generation++;
    const next = new Map(this.#byTask);
    push(next, elevation);
    this.#byTask = next;
  }

  /** This node's view after its own committed delete. */
  removed(requestId: string, taskId: string): void {
    const list = this.#byTask.get(taskId);
    if (!list) return;
    this.#generation++;
    const next = new Map(this.#byTask);
    const rest = list.filter((e) => e.request_id !== requestId);
    if (rest.length > 0) next.set(taskId, rest);
    else next.delete(taskId);
    this.#byTask = next;
  }

  /**
   * Candidate elevations of a task with this chain (root first, the task
   * last), from memory: its own, and its ancestors' approved with
   * `children`. A sibling's or a descendant's never apply, nor an
   * ancestor's without `children` — an elevation does not spread beyond
   * what the approver said.
   */
  candidates(chain: readonly string[], now = this.#now()): ActiveElevation[] {
    if (this.#byTask.size === 0) return [];
    let out: ActiveElevation[] | undefined;
    const last = chain.length - 1;
    for (let i = 0; i <= last; i++) {
      const list = this.#byTask.get(chain[i] as string);
      if (!list) continue;
      for (const e of list) {
        if (e.expires_at <= now || (i !== last && !e.children)) continue;
        out ??= [];
        out.push(e);
      }
    }
    return out ?? [];
  }

  /** The candidates whose entry is still in storage (not revoked on any node). */
  async confirm(candidates: readonly ActiveElevation[]): Promise<ActiveElevation[]> {
    const out: ActiveElevation[] = [];
    for (const e of candidates) {
      if (await this.#entries.get(ELEVATION_NAMESPACE, e.request_id)) out.push(e);
    }
    return out;
  }

  /** The elevations in force for a chain: {@link candidates}, then {@link confirm} when there are any. */
  async forChain(chain: readonly string[]): Promise<ActiveElevation[]> {
    const candidates = this.candidates(chain);
    return candidates.length === 0 || !this.#confirm ? candidates : this.confirm(candidates);
  }

  /** Deletes entries of elevations that ran out (the reaper's round); expired ones are never used anyway. */
  async reapExpired(limit = 500): Promise<number> {
    const keys = await this.#entries.listExpired(ELEVATION_NAMESPACE, this.#now(), limit);
    for (const key of keys) await this.#entries.delete(ELEVATION_NAMESPACE, key);
    return keys.length;
  }

  get size(): number {
    let n = 0;
    for (const list of this.#byTask.values()) n += list.length;
    return n;
  }

  async #readRevision(): Promise<string> {
    const entry = await this.#entries.get(REVISION_NS, REVISION_KEY);
    return entry ? Buffer.from(entry.value).toString('hex') : '';
  }

  async #bumpRevision(entries: EntryStore): Promise<void> {
    await entries.put(REVISION_NS, REVISION_KEY, randomBytes(16));
  }
}

function push(map: Map<string, ActiveElevation[]>, e: ActiveElevation): void {
  const list = map.get(e.task_id);
  if (list) list.push(e);
  else map.set(e.task_id, [e]);
}
