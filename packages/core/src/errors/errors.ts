import { CustosError } from './custos-error.js';

// One subclass per failure a caller may want to catch by type. Each has a
// fixed code; the message comes from the catalogue.

export class ValidationError extends CustosError {
  constructor(detail?: string) {
    super('CUSTOS_ERR_VALIDATION', detail);
  }
}
export class InvalidPathError extends CustosError {
  constructor(detail?: string) {
    super('CUSTOS_ERR_INVALID_PATH', detail);
  }
}
export class UnauthenticatedError extends CustosError {
  // Deliberately no detail: the caller learns only that authentication failed.
  constructor() {
    super('CUSTOS_ERR_UNAUTHENTICATED');
  }
}
export class PermissionDeniedError extends CustosError {
  constructor() {
    super('CUSTOS_ERR_PERMISSION_DENIED');
  }
}
export class NotFoundError extends CustosError {
  constructor(detail?: string) {
    super('CUSTOS_ERR_NOT_FOUND', detail);
  }
}
export class SealedError extends CustosError {
  constructor() {
    super('CUSTOS_ERR_SEALED');
  }
}
/**
 * A ciphertext failed authentication: flipped bytes, a blob moved to another
 * row, or a wrong key. Fixed message: which of these it was is not revealed.
 */
export class IntegrityError extends CustosError {
  constructor(options?: { cause?: unknown }) {
    super('CUSTOS_ERR_INTEGRITY', undefined, options);
  }
}
export class AuditUnavailableError extends CustosError {
  constructor(options?: { cause?: unknown }) {
    super('CUSTOS_ERR_AUDIT_UNAVAILABLE', undefined, options);
  }
}
/**
 * The stored audit chain was tampered with (or damaged): the database
 * disagrees with its last signed checkpoint, with the durable file sink, or
 * with what this node wrote. custos then signs nothing and stays sealed.
 * `detail` names seqs only, never event contents.
 */
export class AuditIntegrityError extends CustosError {
  constructor(detail: string) {
    super('CUSTOS_ERR_AUDIT_INTEGRITY', detail);
  }
}
export class StorageError extends CustosError {
  constructor(options?: { cause?: unknown }) {
    super('CUSTOS_ERR_STORAGE', undefined, options);
  }
}

/**
 * The role or identity is suspended (see RoleService.suspend). Said only to
 * a caller whose credential was verified: an anonymous caller learns nothing
 * about which roles are suspended.
 */
export class SuspendedError extends CustosError {
  /** For the audit event only: `role_suspended` or `identity_suspended`. */
  readonly auditReason: 'role_suspended' | 'identity_suspended';
  constructor(what: 'role' | 'identity') {
    super('CUSTOS_ERR_SUSPENDED');
    this.name = 'SuspendedError';
    this.auditReason = what === 'role' ? 'role_suspended' : 'identity_suspended';
  }
}
