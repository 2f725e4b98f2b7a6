import { UnauthenticatedError } from '../errors/index.js';

/**
 * Why a task token was refused. For the audit log only: the client sees the
 * plain CUSTOS_ERR_UNAUTHENTICATED code and message, never this.
 */
export type TaskTokenRefusal =
  | 'oversized'
  | 'malformed'
  | 'alg_not_allowed'
  | 'typ_mismatch'
  | 'unknown_kid'
  | 'bad_header'
  | 'bad_signature'
  | 'bad_claims'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'dpop_proof_required'
  | 'dpop_key_mismatch';

/**
 * The task a refused token named — only once its signature was verified, so
 * the name is custos's own. For the audit event (`details.refused_task`),
 * where the anomaly rules read it; never sent to the client.
 */
export interface RefusedTaskSubject {
  readonly task_id: string;
  readonly identity: string;
  readonly role: string;
}

/**
 * A task token failed verification. It *is* an {@link UnauthenticatedError}
 * (same code, same fixed message, same JSON body), so the error handler
 * treats it like any other authentication failure; `auditReason` is read by
 * the audit plugin and goes nowhere else.
 */
export class TaskTokenInvalidError extends UnauthenticatedError {
  readonly auditReason: TaskTokenRefusal;
  /** Set when the signature was valid (a refusal on time, issuer, audience or binding). */
  readonly auditSubject: RefusedTaskSubject | undefined;

  constructor(auditReason: TaskTokenRefusal, auditSubject?: RefusedTaskSubject) {
    super();
    this.name = 'TaskTokenInvalidError';
    this.auditReason = auditReason;
    this.auditSubject = auditSubject;
  }
}

/**
 * A genuine task token whose task (or an ancestor) is over: revoked, ended
 * or expired. The client sees CUSTOS_ERR_UNAUTHENTICATED like any refusal;
 * the audit event says which, and names the task, so that the use of a dead
 * task's token can be detected (the `dead-task-token` anomaly rule).
 */
export class TaskInactiveError extends UnauthenticatedError {
  readonly auditReason: 'task_revoked' | 'task_ended' | 'task_expired';
  readonly auditSubject: RefusedTaskSubject;

  constructor(state: 'revoked' | 'ended' | 'expired', auditSubject: RefusedTaskSubject) {
    super();
    this.name = 'TaskInactiveError';
    this.auditReason = `task_${state}`;
    this.auditSubject = auditSubject;
  }
}

/**
 * The task a refused token named, for the audit event — only from custos's
 * own refusals, which name a task only after its signature was verified.
 * Shared by the API's error handler and the credential proxy.
 */
export function refusedTaskSubject(error: unknown): RefusedTaskSubject | undefined {
  return error instanceof TaskTokenInvalidError || error instanceof TaskInactiveError ? error.auditSubject : undefined;
}
