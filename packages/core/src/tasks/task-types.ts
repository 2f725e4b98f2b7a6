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
  labels: Record<string, string>;
  /** Non-secret handle for orchestrators: look up, extend or revoke without the token. */
  accessor: string;
  act: ActorClaim | null;
  /** DPoP key thumbprint the task's tokens are bound to, if the role requires it. */
  jkt: string | null;
  created_time: string;
  /** Epoch ms. */
  expires_at: number;
  /** How it got in: bootstrap, jwt, cert, operator, delegation. */
  via: string;
}

export type TaskState = 'active' | 'ended' | 'revoked' | 'expired';

/** A task as shown to callers. */
export interface TaskView extends Omit<TaskRecord, 'expires_at'> {
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
