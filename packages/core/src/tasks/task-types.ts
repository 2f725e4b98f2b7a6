/** One link of an RFC 8693 actor chain: who delegated, newest outermost. */
export interface ActorClaim {
  sub: string;
  task_id?: string;
  act?: ActorClaim;
}

/** What custos keeps about a task (encrypted; never the token). */
export interface TaskRecord {
  id: string;
  parent_id: string | null;
  /** Ancestor ids from the root task down to this one (inclusive). */
  chain: string[];
  depth: number;
  role: string;
  /** The identity the task acts for (`bootstrap:…`, a SPIFFE id, `jwt:<iss>#<sub>`, `token:<accessor>`). */
  sub: string;
  /** Space-separated ACTION:PATTERN entries: the slice of the role's grant this task holds. */
  scope: string;
  /**
   * What Cedar sees as `principal.labels`: operator labels (from the role,
   * the bootstrap token, the JWT claim mapping or an operator start) and the
   * agent's own `agent.…` ones; inherited unchanged by children (see task-labels.ts).
   */
  labels: Record<string, string>;
  /** Non-secret handle for orchestrators: look up, extend or revoke without the token. */
  accessor: string;
  act: ActorClaim | null;
  /** DPoP key thumbprint the task's tokens are bound to, if the role requires it. */
  jkt: string | null;
  /**
   * The registered resource URL its tokens are for (RFC 8707), when it was
   * delegated with `resource`: its `aud` is that URL instead of `custos`,
   * so custos itself refuses its tokens. Absent for every other task.
   */
  audience?: string;
  created_time: string;
  /** Epoch ms. */
  expires_at: number;
  /** How it got in: bootstrap, jwt, cert, operator, delegation. */
  via: string;
  /**
   * The incarnation of its role ({@link Role.id}) when the task started: a
   * role deleted and created again under the same name is another role, and
   * this task is not one of its tasks. Absent when the role had no id (made
   * by an earlier build).
   */
  role_id?: string;
  /**
   * Keys of `labels` whose value came from the role when the task (or its
   * root) started, and from no other source. The role's labels are applied
   * again at every use (see task-standing.ts), so a key the role has since
   * dropped is dropped from the task too. Absent on records made before
   * this was kept: their role labels can change, not vanish.
   */
  role_label_keys?: string[];
  /**
   * {@link TASK_RECORD_VERSION} for records whose labels follow the
   * operator/agent rule; absent on records made by earlier builds, whose
   * labels the agent chose (see task-standing.ts).
   */
  v?: number;
}

/** The version of task records written by this build. */
export const TASK_RECORD_VERSION = 2;

export type TaskState = 'active' | 'ended' | 'revoked' | 'expired';

/** A task as shown to callers. */
export interface TaskView extends Omit<TaskRecord, 'expires_at' | 'v' | 'role_label_keys'> {
  state: TaskState;
  expire_time: string;
  /** For revoked/ended: which task's revocation or end caused it (itself or an ancestor). */
  ended_by?: string;
}

/** A freshly issued task: its token is shown once. */
export interface IssuedTask {
  token: string;
  task: TaskView;
}
