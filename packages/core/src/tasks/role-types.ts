import type { ActiveWindow } from './active-hours.js';

/** How an agent of a role may prove who it is. */
export type AuthMethodKind = 'bootstrap' | 'jwt' | 'cert' | 'aws';

/** An agent type (`enricher`, `risk-model`): what it may hold and how it may get in. */
export interface Role {
  name: string;
  /**
   * This incarnation of the role: random, set when the role is created and
   * kept by updates. Deleting a role and creating one with the same name
   * gives a new id, so the old role's tasks and bootstrap tokens, which
   * recorded the old id, are not the new role's. Absent on roles created by
   * earlier builds (until they are deleted).
   */
  id?: string;
  /** Cedar policy names every task of this role holds (intersected with the task's scope). */
  policies: string[];
  /** Longest lifetime of a task of this role, delegated ones included. */
  max_ttl_ms: number;
  /** Lifetime when a request names none (≤ max_ttl_ms). */
  default_ttl_ms: number;
  auth: AuthMethodKind[];
  /** JWT login: every claim must match one of the listed values (`*` suffix = prefix match). */
  bound_claims: Record<string, string[]>;
  /** Logins only from these source networks (CIDR); empty = anywhere. */
  bound_cidrs: string[];
  /** Deepest delegation allowed below a root task of this role (0 = no delegation). */
  max_depth: number;
  /** Task tokens are DPoP-bound (RFC 9449): useless without the agent's key. */
  require_dpop: boolean;
  /**
   * JWT login: the configured JWT method(s) that may be used. A role that
   * allows `jwt` logins must name at least one: whoever may write a method
   * controls who logs in through it, so the role's writer chooses which.
   */
  jwt_methods: string[];
  /**
   * Operator labels every task of the role carries (`principal.labels`);
   * they win over labels from any other source, and a change applies to the
   * role's live tasks at their next request.
   */
  labels: Record<string, string>;
  /**
   * Label keys that may be granted to a task of this role by anyone but the
   * role's writer: a bootstrap token, an operator start, a JWT method's claim
   * mapping. Any other key is refused (`CUSTOS_ERR_LABEL_NOT_ALLOWED`; at a
   * login, `CUSTOS_ERR_UNAUTHENTICATED` with the reason in the audit event).
   * Empty: the role's own labels only.
   */
  grantable_labels: string[];
  /**
   * Declared working hours (`--active-hours 'Mon-Fri 07:00-19:00
   * Europe/Berlin'`): the `off-hours` rule judges the role's requests
   * against these instead of its learned baseline, from the first request.
   * Absent: the learned baseline only.
   */
  active_hours?: ActiveWindow[];
  /**
   * Set while the role is suspended (an operator's `custos role suspend`, or
   * an anomaly rule's `suspend-role` action): no login, start or delegation,
   * and its live tasks are refused at authentication, until `custos role
   * resume`. Kept by `role write`: rewriting a role does not lift it.
   */
  suspended?: RoleSuspension;
  /** Identities suspended under this role (`suspend-identity`), by identity; kept by `role write` too. */
  suspended_identities?: Record<string, RoleSuspension>;
  /**
   * Just-in-time access (docs/jit.md): the scope its tasks may *ask* for
   * beyond what they hold (`ACTION:PATTERN …`, the request ceiling). A
   * request outside it is refused outright, never queued; absent: its
   * tasks may request nothing.
   */
  request_scope?: string;
  /**
   * Policies an approver's token must hold one of (besides a permit of
   * `approve` on the request's resource); empty: any operator the policies
   * allow to approve.
   */
  approvers?: string[];
  /** Distinct approvals a request needs (default 1). */
  approvals?: number;
  created_time: string;
  updated_time: string;
}

/** Who suspended a role or identity, when, and — for an automatic action — on which finding. */
export interface RoleSuspension {
  /** `token:<accessor>` for an operator, `alert:<finding id>` for an anomaly action. */
  by: string;
  at: string;
  /** The finding that made an anomaly rule act, and the rule. */
  finding_id?: string;
  rule?: string;
}

/** What `role write` sets: suspension is not among it (see RoleService.suspend and resume). */
export type RoleInput = Partial<
  Omit<Role, 'name' | 'id' | 'created_time' | 'updated_time' | 'suspended' | 'suspended_identities'>
> & { policies: string[] };
