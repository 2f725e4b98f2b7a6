import { AuditConflictError, isCustosError, StorageError } from '@custos/core';

/**
 * Wraps a driver error in {@link StorageError} (driver error as `cause`, so
 * neither SQL nor values reach a message). Errors that are already custos's
 * own, or an {@link AuditConflictError}, pass through unchanged.
 */
export function wrapStorageError(e: unknown): Error {
  if (isCustosError(e) || e instanceof AuditConflictError) return e;
  return new StorageError({ cause: e });
}
