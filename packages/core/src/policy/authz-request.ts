import type { PolicyAction } from './policy-action.js';

/**
 * Who is asking. `id` identifies the principal in decisions and audit; for a
 * token it is the token's accessor/id, never the bearer secret itself.
 */
export type AuthzPrincipal =
  /** An operator token, by accessor. Its display name is cosmetic and never reaches Cedar. */
  | { type: 'Token'; id: string }
  | { type: 'Identity'; id: string; attrs: { role: string } }
  | {
      type: 'Task';
      id: string;
      attrs: {
        role: string;
        /** Delegation depth of this task (0 for a root task). */
        depth: number;
        labels?: readonly string[];
      };
      /** The identity that started the chain and the ancestor tasks, for `principal in …`. */
      parents?: readonly { type: 'Identity' | 'Task'; id: string }[];
    };

/** Facts about the request that policies may test. */
export interface AuthzContext {
  /** Request time; defaults to now. Exposed to Cedar in UTC. */
  now?: Date;
  /**
   * Client address (IPv4 or IPv6; IPv4-mapped IPv6 is unwrapped). When absent
   * Cedar sees `0.0.0.0`, which no range rule should admit.
   */
  sourceIp?: string;
  /** Delegation depth; defaults to the task's depth, 0 for other principals. */
  depth?: number;
  /** Task ids from the root task down to the requesting one. */
  taskChain?: readonly string[];
  /**
   * Set when the request is decided under a just-in-time elevation (the
   * task's scope did not cover it; an approved request's does): Cedar sees
   * `context.elevation.active == true`, so a `forbid` can refuse elevated
   * access to some paths outright. Absent: `active` is false.
   */
  elevation?: { readonly requestId: string; readonly scope: string };
}

/** One authorisation question: may `principal`, holding `policies`, do `action` on `path`? */
export interface AuthzRequest {
  principal: AuthzPrincipal;
  /** Names of the policies the principal holds; unknown names are ignored. */
  policies: readonly string[];
  action: PolicyAction;
  /** A custos path: `kv/finance/enrichment-api`, `kv/finance/`, `sys/policies/NAME`. */
  path: string;
  context?: AuthzContext;
}

/** The answer. Immutable: identical questions may share one decision object. */
export interface AuthzDecision {
  readonly allowed: boolean;
  /**
   * Ids (`NAME#N`) of the statements that determined the decision: the
   * matching permits when allowed, the matching forbids when denied by one,
   * empty on default deny.
   */
  readonly reasons: readonly string[];
  /**
   * Ids of statements whose evaluation failed. Cedar skips those; custos
   * denies if one of them is a forbid. Always set by the engine (optional so
   * callers can build decisions that bypass it, e.g. for the root token).
   */
  readonly errors?: readonly string[];
}
