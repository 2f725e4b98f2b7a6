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
 * A task token failed verification. It *is* an {@link UnauthenticatedError}
 * (same code, same fixed message, same JSON body), so the error handler
 * treats it like any other authentication failure; `auditReason` is read by
 * the audit plugin and goes nowhere else.
 */
export class TaskTokenInvalidError extends UnauthenticatedError {
  readonly auditReason: TaskTokenRefusal;

  constructor(auditReason: TaskTokenRefusal) {
    super();
    this.name = 'TaskTokenInvalidError';
    this.auditReason = auditReason;
  }
}
