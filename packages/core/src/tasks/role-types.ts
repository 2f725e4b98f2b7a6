/** How an agent of a role may prove who it is. */
export type AuthMethodKind = 'bootstrap' | 'jwt' | 'cert';

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
  /** JWT login: which configured JWT method(s) may be used; empty = any. */
  jwt_methods: string[];
  /**
   * Operator labels every task of the role carries (`principal.labels`),
   * fixed when the task starts; they win over labels from any other source.
   */
  labels: Record<string, string>;
  created_time: string;
  updated_time: string;
}

export type RoleInput = Partial<Omit<Role, 'name' | 'id' | 'created_time' | 'updated_time'>> & { policies: string[] };
