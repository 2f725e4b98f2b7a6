import type { ActiveWindow } from '../tasks/active-hours.js';
import type { RoleService } from '../tasks/role-service.js';

/** Roles whose declarations are loaded at start, at most (the role listing's own bound). */
const PRELOAD_MAX = 10_000;

/**
 * The roles' declared active hours, kept in memory for the `off-hours` rule,
 * which runs per audit event and must never read storage.
 *
 * Why a kept-current map rather than a read per event or a timer over all
 * roles: the rule's cost budget is a fraction of a microsecond per event,
 * and a role's hours change rarely. So the map is
 * - loaded once at start (every role, bounded);
 * - told at once of every change made on this node (`RoleService.onChange`);
 * - for other nodes' changes in a cluster, refreshed per role in the
 *   background when a lookup finds its entry older than `staleMs` (default
 *   30 s): the cost follows the roles actually active, one read per role
 *   per interval, off the rule's path (the lookup answers from memory at
 *   once). A role written on another node is judged by its new declaration
 *   within that interval.
 */
export class DeclaredHours {
  readonly #roles: Pick<RoleService, 'find'>;
  readonly #staleMs: number;
  readonly #now: () => number;
  readonly #hours = new Map<string, { windows: readonly ActiveWindow[] | undefined; at: number }>();
  readonly #refreshing = new Set<string>();

  constructor(roles: Pick<RoleService, 'find'>, options: { staleMs?: number; now?: () => number } = {}) {
    this.#roles = roles;
    this.#staleMs = options.staleMs ?? 30_000;
    this.#now = options.now ?? Date.now;
  }

  /** Loads every role's declaration and follows this node's changes; returns the unsubscribe function. */
  async start(roles: Pick<RoleService, 'list' | 'find' | 'onChange'>): Promise<() => void> {
    const unsubscribe = roles.onChange((name, role) => this.#set(name, role?.active_hours));
    for (const name of (await roles.list()).slice(0, PRELOAD_MAX)) {
      const role = await roles.find(name).catch(() => undefined);
      this.#set(name, role?.active_hours);
    }
    return unsubscribe;
  }

  /** The lookup the rule is given: from memory, scheduling a background refresh of a stale entry. */
  readonly lookup = (role: string): readonly ActiveWindow[] | undefined => {
    const entry = this.#hours.get(role);
    if (!entry || this.#now() - entry.at > this.#staleMs) this.#refresh(role);
    return entry?.windows;
  };

  #set(name: string, windows: readonly ActiveWindow[] | undefined): void {
    // Bounded like the rules' own maps: a role beyond it is looked up again when next seen.
    if (!this.#hours.has(name) && this.#hours.size >= PRELOAD_MAX) {
      const oldest = this.#hours.keys().next();
      if (!oldest.done) this.#hours.delete(oldest.value);
    }
    this.#hours.set(name, { windows: windows && windows.length > 0 ? windows : undefined, at: this.#now() });
  }

  #refresh(name: string): void {
    if (this.#refreshing.has(name)) return;
    this.#refreshing.add(name);
    this.#roles
      .find(name)
      .then(
        (role) => this.#set(name, role?.active_hours),
        // Unreadable now (storage hiccup): keep what is known, and try again after the interval, not per event.
        () => this.#set(name, this.#hours.get(name)?.windows),
      )
      .finally(() => this.#refreshing.delete(name));
  }
}
