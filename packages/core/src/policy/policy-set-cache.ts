import type { AuthzDecision } from './authz-request.js';
import { CedarRuntimeFault, cedarRuntimeGeneration, type PolicyJson, preparsePolicySet } from './cedar-runtime.js';
import type { PolicyStatement } from './policy-document.js';
import { emptyNeeds, mergeNeeds, type RequestNeeds } from './statement-needs.js';

/** The statements one principal can use for one action, preparsed in Cedar. */
export interface PreparedSet {
  /** Id of the preparsed Cedar set; undefined when no statement applies (always deny). */
  readonly psetId: string | undefined;
  /** Policy names it was built from, to drop it when one changes. */
  readonly names: readonly string[];
  /** What of a request its statements can observe. */
  readonly needs: RequestNeeds;
  /** Ids of its forbid statements. */
  readonly forbids: ReadonlySet<string>;
  /** Decisions already computed for identical Cedar calls against this set. */
  readonly memo: Map<string, AuthzDecision>;
}

let engineSeq = 0;

/**
 * A bounded LRU of preparsed Cedar policy sets. Cedar keeps preparsed sets in
 * wasm memory by id and has no call to free one, so ids are *slots*: an
 * evicted or dropped set's id goes back to a free list and the next set
 * re-preparses over it. Wasm memory therefore stays bounded by `maxSets`.
 *
 * The ids belong to one Cedar runtime: when the runtime is rebuilt after a
 * fault (see cedar-runtime.ts) the new one holds no sets, so the cache
 * empties itself and sets are preparsed again, from the same statements, as
 * they are next used.
 */
export class PolicySetCache {
  readonly #sets = new Map<string, PreparedSet>();
  #free: string[] = [];
  readonly #prefix = `custos-${++engineSeq}-`;
  #nextSlot = 0;
  #generation = cedarRuntimeGeneration();
  /** How many times Cedar parsed a set; never grows on the request path once warm. */
  preparses = 0;

  constructor(readonly maxSets: number) {
    if (!Number.isInteger(maxSets) || maxSets < 1) throw new RangeError('maxSets must be a positive integer');
  }

  get size(): number {
    return this.#sets.size;
  }

  /** The set for `key`, marked as recently used. */
  get(key: string): PreparedSet | undefined {
    if (this.#generation !== cedarRuntimeGeneration()) this.#reset();
    const set = this.#sets.get(key);
    if (set !== undefined && this.#sets.size > 1) {
      this.#sets.delete(key);
      this.#sets.set(key, set);
    }
    return set;
  }

  /** Preparses `statements` under `key` (evicting the least recently used set if full). */
  add(key: string, names: readonly string[], statements: readonly PolicyStatement[]): PreparedSet {
    const needs = emptyNeeds();
    const forbids = new Set<string>();
    const policies: Record<string, PolicyJson | string> = {};
    for (const s of statements) {
      mergeNeeds(needs, s.needs);
      if (s.effect === 'forbid') forbids.add(s.id);
      policies[s.id] = s.cedar;
    }
    while (this.#sets.size >= this.maxSets) {
      const [oldKey, oldSet] = this.#sets.entries().next().value as [string, PreparedSet];
      this.#release(oldKey, oldSet);
    }
    let psetId: string | undefined;
    if (statements.length > 0) {
      psetId = this.#slot();
      this.preparses++;
      let answer: ReturnType<typeof preparsePolicySet>;
      try {
        answer = preparsePolicySet(psetId, { staticPolicies: policies });
      } catch (e) {
        // A new runtime: every id of this cache is gone with the old one.
        if (e instanceof CedarRuntimeFault) this.#reset();
        throw e;
      }
      if (answer.type === 'failure') {
        // Every statement was validated when written; this is a bug, not input.
        this.#free.push(psetId);
        throw new Error('preparsing validated policies failed');
      }
    }
    const set: PreparedSet = { psetId, names, needs, forbids, memo: new Map() };
    this.#sets.set(key, set);
    return set;
  }

  /** Drops every set built from policy `name`; returns how many. */
  dropContaining(name: string): number {
    let dropped = 0;
    for (const [key, set] of this.#sets) {
      if (set.names.includes(name)) {
        this.#release(key, set);
        dropped++;
      }
    }
    return dropped;
  }

  #reset(): void {
    this.#sets.clear();
    this.#free = [];
    this.#nextSlot = 0;
    this.#generation = cedarRuntimeGeneration();
  }

  #slot(): string {
    return this.#free.pop() ?? `${this.#prefix}${this.#nextSlot++}`;
  }

  #release(key: string, set: PreparedSet): void {
    this.#sets.delete(key);
    if (set.psetId !== undefined) this.#free.push(set.psetId);
  }
}
