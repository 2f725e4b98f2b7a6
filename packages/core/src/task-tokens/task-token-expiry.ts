import { CustosError } from '../errors/index.js';

/** No task token lives shorter than this: `exp` has one-second resolution. */
export const MIN_TASK_TTL_MS = 1_000;

export interface ClampExpiryInput {
  /** What the caller asked for; absent means "as long as allowed". */
  readonly requestedTtlMs?: number;
  /** The role's max TTL. */
  readonly roleMaxTtlMs: number;
  /** The parent token's `exp` (epoch seconds); absent for a root task. */
  readonly parentExp?: number;
  /** Epoch milliseconds. */
  readonly now: number;
}

/**
 * The `exp` (epoch seconds) of a new task token. A request beyond the
 * role's max TTL is refused with CUSTOS_ERR_INVALID_TTL, and one that would
 * outlive the parent with CUSTOS_ERR_TTL_EXCEEDS_PARENT: refused, not
 * silently narrowed, so an agent never believes it holds a token longer
 * than it does. Without a request the TTL is the most both allow.
 */
export function clampExpiry(input: ClampExpiryInput): { exp: number } {
  const { requestedTtlMs, roleMaxTtlMs, parentExp, now } = input;
  if (!Number.isSafeInteger(roleMaxTtlMs) || roleMaxTtlMs < MIN_TASK_TTL_MS) {
    throw new CustosError('CUSTOS_ERR_INVALID_TTL');
  }
  if (parentExp !== undefined && !Number.isSafeInteger(parentExp)) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
  const parentRemainingMs = parentExp === undefined ? Number.POSITIVE_INFINITY : parentExp * 1000 - now;
  let ttlMs: number;
  if (requestedTtlMs === undefined) {
    ttlMs = Math.min(roleMaxTtlMs, parentRemainingMs);
    if (ttlMs < MIN_TASK_TTL_MS) throw new CustosError('CUSTOS_ERR_TTL_EXCEEDS_PARENT');
  } else {
    if (!Number.isSafeInteger(requestedTtlMs) || requestedTtlMs < MIN_TASK_TTL_MS || requestedTtlMs > roleMaxTtlMs) {
      throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    }
    if (requestedTtlMs > parentRemainingMs) throw new CustosError('CUSTOS_ERR_TTL_EXCEEDS_PARENT');
    ttlMs = requestedTtlMs;
  }
  // Rounding down keeps exp ≤ the parent's; a TTL of ≥ 1 s keeps exp > iat.
  return { exp: Math.floor((now + ttlMs) / 1000) };
}
