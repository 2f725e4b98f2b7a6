import { isEgressRefusal } from '@custos/core';
import { engineUnavailable } from './engine-errors.js';

/**
 * Runs `fn` on a pooled connection. A connection the egress policy refused
 * is that refusal. A pool that cannot hand one out, or a
 * connection that fails under `fn` (per the driver's `isConnectionError`),
 * becomes CUSTOS_ERR_ENGINE_UNAVAILABLE; a failed connection is released as
 * broken so the pool drops it instead of handing it out again.
 */
export async function withPooledConnection<C, T>(
  pool: {
    acquire: () => Promise<C>;
    release: (connection: C, broken: boolean) => void;
    isConnectionError: (error: unknown) => boolean;
  },
  fn: (connection: C) => Promise<T>,
): Promise<T> {
  let connection: C;
  try {
    connection = await pool.acquire();
  } catch (e) {
    if (isEgressRefusal(e)) throw e;
    throw engineUnavailable();
  }
  let broken = false;
  try {
    return await fn(connection);
  } catch (e) {
    if (pool.isConnectionError(e)) {
      broken = true;
      throw engineUnavailable();
    }
    throw e;
  } finally {
    pool.release(connection, broken);
  }
}
