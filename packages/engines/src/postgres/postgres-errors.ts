/** SQLSTATE 42704 `undefined_object`: the role is not there (already revoked). */
export const UNDEFINED_OBJECT = '42704';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

/** The SQLSTATE (or Node.js error code) of a `pg` error, if any. */
export function pgCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * True when the error means the database is unreachable or refused us, not
 * that a statement was wrong: network failures, connection exceptions (08),
 * invalid authorization (28), operator intervention/shutdown (57P), and the
 * driver's own "connection terminated".
 */
export function isPostgresConnectionError(error: unknown): boolean {
  const code = pgCode(error);
  if (code && (NETWORK_CODES.has(code) || /^(08|28|57P)/.test(code))) return true;
  return (
    error instanceof Error &&
    /Connection terminated|timeout expired|Client has encountered a connection error/i.test(error.message)
  );
}
