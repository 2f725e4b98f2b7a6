import { CustosError } from '@custos/core';

/**
 * The first line of a driver error, with every secret given cut out. Drivers
 * may echo statements (mysql2 keeps the SQL, with its `IDENTIFIED BY '…'`, on
 * the error) so nothing of a driver error but this line ever leaves an engine,
 * and never as a `cause`.
 */
export function safeEngineMessage(error: unknown, secrets: readonly string[]): string {
  const raw = error instanceof Error ? error.message : String(error);
  let line = raw.split('\n', 1)[0] ?? '';
  for (const secret of secrets) if (secret) line = line.replaceAll(secret, '[redacted]');
  // A statement quoted back by the server may carry an IDENTIFIED BY/PASSWORD literal we do not know.
  line = line.replace(/(IDENTIFIED\s+BY|PASSWORD)\s+'[^']*'?/gi, "$1 '[redacted]'");
  return line.slice(0, 300);
}

/** The database could not be reached, or refused the admin credential. Says nothing more. */
export function engineUnavailable(): CustosError {
  return new CustosError('CUSTOS_ERR_ENGINE_UNAVAILABLE');
}

/** A statement failed on a reachable database: the code, plus the driver's first line, scrubbed. */
export function engineStatementFailed(operation: string, error: unknown, secrets: readonly string[]): CustosError {
  return new CustosError('CUSTOS_ERR_ENGINE_UNAVAILABLE', `${operation}: ${safeEngineMessage(error, secrets)}`);
}

/** A role's statements were refused by the database. */
export function invalidStatements(error: unknown, secrets: readonly string[]): CustosError {
  if (error instanceof CustosError) return error;
  return new CustosError('CUSTOS_ERR_VALIDATION', safeEngineMessage(error, secrets));
}

/**
 * A login with a credential under test was refused (wrong password, unknown
 * user, no access to the database): the driver's first line, scrubbed of the
 * password, so an operator learns why without learning the value.
 */
export function loginRefused(error: unknown, secrets: readonly string[]): CustosError {
  return new CustosError(
    'CUSTOS_ERR_ROTATION_FAILED',
    `A login with the new credential failed: ${safeEngineMessage(error, secrets)}`,
  );
}
