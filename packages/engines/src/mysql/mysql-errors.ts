const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'PROTOCOL_CONNECTION_LOST',
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_CON_COUNT_ERROR',
]);

/** The mysql2 error code (`ER_…` or a Node.js code), if any. */
export function mysqlCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True when the server is unreachable or refused our credential (not a wrong statement). */
export function isMysqlConnectionError(error: unknown): boolean {
  const code = mysqlCode(error);
  if (code && NETWORK_CODES.has(code)) return true;
  return (error as { fatal?: unknown } | null)?.fatal === true;
}
