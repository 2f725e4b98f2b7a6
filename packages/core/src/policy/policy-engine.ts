import { CustosError } from '../errors/index.js';
import type { AuthzDecision, AuthzRequest } from './authz-request.js';
import { buildCedarCall } from './cedar-request.js';
import { CedarRuntimeFault, statefulIsAuthorized } from './cedar-runtime.js';
import type { PolicyAction } from './policy-action.js';
import {
  compilePolicyDocument,
  type PolicyDocument,
  type PolicyStatement,
  resourceScopeMatches,
} from './policy-document.js';
import { PolicySetCache, type PreparedSet } from './policy-set-cache.js';
import { POLICY_TEXT_LIMITS, type PolicyTextLimits } from './policy-text-bounds.js';
import { pathAncestors } from './resource-path.js';

/** Tuning knobs; the defaults suit a server. */
export interface PolicyEngineOptions {
  /** Preparsed sets kept (one per distinct policy combination and action). Default 512. */
  maxCachedSets?: number;
  /** Decisions memoised per preparsed set; 0 disables the memo. Default 1024. */
  maxDecisionsPerSet?: number;
  /**
   * Bounds on policy text, checked before Cedar sees it. Default
   * {@link POLICY_TEXT_LIMITS}, which Cedar is known to survive; raising them
   * risks runtime faults (tests raise them to cause one on purpose).
   */
  limits?: Partial<PolicyTextLimits>;
}

/** Counters for metrics and tests. */
export interface PolicyEngineStats {
  policies: number;
  cachedSets: number;
  /** Cedar policy-set parses since creation: grows on change, not per request. */
  preparses: number;
  /** Decisions Cedar evaluated. */
  evaluations: number;
  /** Decisions answered from the memo. */
  memoHits: number;
  /** Decisions refused because Cedar failed on them (see {@link PolicyEngine.authorize}). */
  faults: number;
}

/** The result of validating a policy document. */
export interface PolicyValidation {
  /** Number of permit/forbid statements. */
  statements: number;
  /** Validator warnings, e.g. a statement that can never apply. */
  warnings: string[];
}

const DEFAULT_DENY: AuthzDecision = Object.freeze({
  allowed: false,
  reasons: Object.freeze([]),
  errors: Object.freeze([]),
});

/**
 * Cedar authorisation for custos. Policies are named documents of Cedar
 * statements; a principal holds a list of names. A request is allowed iff
 * some `permit` statement of the held policies matches and no `forbid` of
 * them does — Cedar semantics over their union; default deny.
 *
 * Cost model: a document is parsed and validated when it is set. For each
 * distinct (held policies, action) pair the statements that can apply to the
 * action are preparsed once in Cedar and cached; a request only builds the
 * principal, the resource with its folder ancestors and the context (cut to
 * what the statements read), then asks Cedar. Identical calls against one
 * set are memoised. Changing or removing a policy drops the sets built from it.
 *
 * One fail-closed deviation from plain Cedar: if a `forbid` statement fails
 * to evaluate (e.g. overflow), Cedar would skip it; custos denies instead.
 *
 * Faults: policy text is bounded before Cedar sees it, so Cedar's wasm should
 * never fail; if it does, the runtime is rebuilt (cedar-runtime.ts), this
 * engine's preparsed sets are rebuilt as they are next used, and the decision
 * is refused — never allowed — with CUSTOS_ERR_POLICY_ENGINE_FAULT.
 *
 * @example
 * ```ts
 * const engine = new PolicyEngine();
 * engine.set('finance-read', 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/finance/");');
 * engine.authorize({ principal: { type: 'Token', id: 't1' }, policies: ['finance-read'], action: 'read', path: 'kv/finance/api' }).allowed; // true
 * ```
 */
export class PolicyEngine {
  readonly #docs = new Map<string, { doc: PolicyDocument; rev: number; invalid?: true }>();
  readonly #sets: PolicySetCache;
  readonly #memoMax: number;
  readonly #limits: PolicyTextLimits;
  readonly #byAction = new Map<string, Candidates>();
  /** Keys of preparsed sets on which Cedar failed twice running: refused until a policy changes. */
  readonly #faulted = new Set<string>();
  #rev = 0;
  #evaluations = 0;
  #memoHits = 0;
  #faults = 0;
  /** Stored documents that do not compile (see {@link PolicyEngine.setInvalid}). */
  #invalidCount = 0;

  /**
   * Creates an engine. Cedar's wasm is loaded synchronously when this module
   * is imported, so the constructor works as well; this async factory keeps
   * callers independent of how Cedar is loaded.
   */
  static async create(options: PolicyEngineOptions = {}): Promise<PolicyEngine> {
    return new PolicyEngine(options);
  }

  constructor(options: PolicyEngineOptions = {}) {
    this.#sets = new PolicySetCache(options.maxCachedSets ?? 512);
    this.#memoMax = options.maxDecisionsPerSet ?? 1024;
    this.#limits = { ...POLICY_TEXT_LIMITS, ...options.limits };
  }

  /**
   * Parses and validates `text` as policy `name` without storing it. Throws
   * CUSTOS_ERR_VALIDATION for a bad name, CUSTOS_ERR_INVALID_POLICY (detail:
   * line, column and Cedar's message, or the bound exceeded — see
   * {@link scanPolicyText}) for a bad document.
   */
  validate(name: string, text: string): PolicyValidation {
    const doc = compilePolicyDocument(name, text, this.#limits);
    return { statements: doc.statements.length, warnings: [...doc.warnings] };
  }

  /** Validates and stores (or replaces) policy `name`; later decisions use it. */
  set(name: string, text: string): PolicyValidation {
    const doc = compilePolicyDocument(name, text, this.#limits);
    this.#forget(name);
    this.#docs.set(name, { doc, rev: ++this.#rev });
    this.#dropContaining(name);
    return { statements: doc.statements.length, warnings: [...doc.warnings] };
  }

  /**
   * Stores `text` as policy `name` although it does not compile — a stored
   * policy that a later version refuses (e.g. beyond a new bound). Fails
   * closed: its forbids cannot be enforced, so every principal holding it is
   * denied everything until it is replaced or removed. `get` returns its text.
   */
  setInvalid(name: string, text: string): void {
    this.#forget(name);
    this.#docs.set(name, { doc: { name, text, statements: [], warnings: [] }, rev: ++this.#rev, invalid: true });
    this.#invalidCount++;
    this.#dropContaining(name);
  }

  /** Removes policy `name`; returns whether it existed. Tokens holding it lose what it granted. */
  remove(name: string): boolean {
    const existed = this.#forget(name);
    if (existed) this.#dropContaining(name);
    return existed;
  }

  has(name: string): boolean {
    return this.#docs.has(name);
  }

  /** The stored policy text, or undefined. */
  get(name: string): string | undefined {
    return this.#docs.get(name)?.doc.text;
  }

  /** Names of the stored policies, sorted. */
  names(): string[] {
    return [...this.#docs.keys()].sort();
  }

  /**
   * Decides `req` synchronously. Throws CUSTOS_ERR_INVALID_PATH for a
   * malformed path, CUSTOS_ERR_VALIDATION for a malformed source address and
   * CUSTOS_ERR_POLICY_ENGINE_FAULT when Cedar failed on the decision.
   */
  authorize(req: AuthzRequest): AuthzDecision {
    const ancestors = pathAncestors(req.path);
    const held = this.#held(req.policies);
    if (held.length === 0) return DEFAULT_DENY;
    if (this.#invalidCount > 0) {
      const invalid = held.filter((n) => this.#docs.get(n)?.invalid);
      if (invalid.length > 0) return Object.freeze({ allowed: false, reasons: [], errors: Object.freeze(invalid) });
    }

    const candidates = this.#candidates(req.action, held);
    // Only statements whose resource scope admits the path go to Cedar; the
    // set of them (a bit pattern over the candidates) picks the preparsed set.
    const matched: PolicyStatement[] = [];
    let mask = '';
    for (let i = 0; i < candidates.statements.length; i++) {
      const s = candidates.statements[i] as PolicyStatement;
      const hit = resourceScopeMatches(s.resource, req.path, ancestors);
      if (hit) matched.push(s);
      mask += hit ? '1' : '0';
    }
    if (matched.length === 0) return DEFAULT_DENY;

    const key = `${candidates.key}|${mask}`;
    if (this.#faulted.has(key)) {
      this.#faults++;
      throw new CustosError('CUSTOS_ERR_POLICY_ENGINE_FAULT');
    }
    try {
      return this.#decide(req, ancestors, key, held, matched);
    } catch (e) {
      if (!(e instanceof CedarRuntimeFault)) throw e;
    }
    // The runtime has been rebuilt. Try once more on the fresh one: a fault
    // left by an earlier call passes, one this decision causes recurs — and
    // then this set is not handed to Cedar again until a policy changes, so
    // one bad set cannot make every request rebuild the runtime.
    try {
      return this.#decide(req, ancestors, key, held, matched);
    } catch (e) {
      if (!(e instanceof CedarRuntimeFault)) throw e;
      if (this.#faulted.size >= this.#sets.maxSets) this.#faulted.clear();
      this.#faulted.add(key);
      this.#faults++;
      throw new CustosError('CUSTOS_ERR_POLICY_ENGINE_FAULT', undefined, { cause: e });
    }
  }

  #decide(
    req: AuthzRequest,
    ancestors: readonly string[],
    key: string,
    held: readonly string[],
    matched: readonly PolicyStatement[],
  ): AuthzDecision {
    const set: PreparedSet = this.#sets.get(key) ?? this.#sets.add(key, held, matched);
    if (set.psetId === undefined) return DEFAULT_DENY;

    const call = buildCedarCall(req, ancestors, set.psetId, set.needs);
    let memoKey: string | undefined;
    if (this.#memoMax > 0) {
      // The call is everything Cedar sees, so equal calls get equal answers.
      memoKey = JSON.stringify(call);
      const hit = set.memo.get(memoKey);
      if (hit !== undefined) {
        this.#memoHits++;
        return hit;
      }
    }

    this.#evaluations++;
    const answer = statefulIsAuthorized(call);
    if (answer.type === 'failure') {
      // We built the request ourselves from validated parts: a bug, never a permit.
      throw new CustosError('CUSTOS_ERR_INTERNAL', undefined, { cause: answer.errors[0]?.message });
    }
    const { decision, diagnostics } = answer.response;
    const errors = diagnostics.errors.map((e) => e.policyId);
    const failedForbids = errors.filter((id) => set.forbids.has(id));
    const allowed = decision === 'allow' && failedForbids.length === 0;
    const reasons = decision === 'allow' && !allowed ? failedForbids : [...diagnostics.reason, ...failedForbids];
    const result: AuthzDecision = Object.freeze({
      allowed,
      reasons: Object.freeze(reasons.sort()),
      errors: Object.freeze(errors.sort()),
    });

    if (memoKey !== undefined) {
      if (set.memo.size >= this.#memoMax) set.memo.clear();
      set.memo.set(memoKey, result);
    }
    return result;
  }

  /** Counters since creation. */
  stats(): PolicyEngineStats {
    return {
      policies: this.#docs.size,
      cachedSets: this.#sets.size,
      preparses: this.#sets.preparses,
      evaluations: this.#evaluations,
      memoHits: this.#memoHits,
      faults: this.#faults,
    };
  }

  /** Deletes `name` from the documents, keeping the count of invalid ones. */
  #forget(name: string): boolean {
    if (this.#docs.get(name)?.invalid) this.#invalidCount--;
    return this.#docs.delete(name);
  }

  #dropContaining(name: string): void {
    this.#sets.dropContaining(name);
    this.#byAction.clear();
    this.#faulted.clear();
  }

  /** Held names that exist, deduplicated and sorted (the cache key is order-free). */
  #held(policies: readonly string[]): string[] {
    const out: string[] = [];
    for (const n of policies) if (this.#docs.has(n) && !out.includes(n)) out.push(n);
    return out.sort();
  }

  /** The statements of `held` that can apply to `action`, cached until a policy changes. */
  #candidates(action: PolicyAction, held: readonly string[]): Candidates {
    const key = `${action}|${held.map((n) => `${n}@${this.#docs.get(n)?.rev}`).join(',')}`;
    let c = this.#byAction.get(key);
    if (c === undefined) {
      const statements = held.flatMap((n) =>
        (this.#docs.get(n)?.doc.statements ?? []).filter((s) => s.actions === 'all' || s.actions.has(action)),
      );
      c = { key, statements };
      // Small and cheap to rebuild: clear rather than track recency.
      if (this.#byAction.size >= this.#sets.maxSets) this.#byAction.clear();
      this.#byAction.set(key, c);
    }
    return c;
  }
}

interface Candidates {
  readonly key: string;
  readonly statements: readonly PolicyStatement[];
}
