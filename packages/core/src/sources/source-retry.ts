import { CustosError } from '../errors/index.js';
import { SourceFault } from './source-types.js';

/** Attempts of one cloud call when the cloud throttles (the first one included). */
export const SOURCE_ATTEMPTS = 4;
const BASE_DELAY_MS = 100;
const MAX_DELAY_MS = 2_000;

/**
 * Runs one cloud call with custos's own bounded retry: only throttling is
 * retried (a denial or a missing secret will not change by asking again), up
 * to {@link SOURCE_ATTEMPTS} attempts, waiting the service's Retry-After or
 * an exponential backoff with full jitter (100 ms, 200 ms, 400 ms…), each
 * wait capped at 2 s, and never past the call's deadline: `timeoutMs` covers
 * every attempt and wait, so a throttled source costs a reader a bounded
 * time. The SDKs' own retries are switched off so that this is the only
 * retry loop (two nested loops would multiply the attempts).
 *
 * Cloud failures become custos errors here, and only here. The error names
 * the source (its custos name, chosen by an operator) and nothing the cloud
 * said: an AWS AccessDenied message carries the caller's ARN, with the
 * account id and role name, which is custos's identity, not the reader's
 * business.
 */
export async function callSource<T>(
  source: string,
  timeoutMs: number,
  call: (signal: AbortSignal) => Promise<T>,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const signal = AbortSignal.timeout(timeoutMs);
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(signal);
    } catch (error) {
      const fault = classify(error, signal);
      if (fault.kind === 'throttled' && attempt < SOURCE_ATTEMPTS) {
        const backoff = Math.random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (attempt - 1));
        const wait = Math.min(fault.retryAfterMs ?? backoff, MAX_DELAY_MS);
        if (Date.now() + wait < deadline) {
          await sleep(wait);
          continue;
        }
      }
      throw toCustosError(source, fault);
    }
  }
}

function classify(error: unknown, signal: AbortSignal): SourceFault {
  if (error instanceof SourceFault)
    return signal.aborted && error.kind === 'failed' ? new SourceFault('timeout') : error;
  if (error instanceof CustosError && error.code === 'CUSTOS_ERR_EGRESS_REFUSED') throw error;
  return new SourceFault(signal.aborted ? 'timeout' : 'failed');
}

function toCustosError(source: string, fault: SourceFault): CustosError {
  const named = `Source "${source}".`;
  switch (fault.kind) {
    case 'denied':
      return new CustosError('CUSTOS_ERR_SOURCE_ACCESS_DENIED', named);
    case 'not_found':
      return new CustosError('CUSTOS_ERR_NOT_FOUND');
    case 'throttled':
      return new CustosError('CUSTOS_ERR_SOURCE_THROTTLED', named);
    case 'timeout':
      return new CustosError('CUSTOS_ERR_SOURCE_TIMEOUT', named);
    case 'no_credentials':
      return new CustosError('CUSTOS_ERR_SOURCE_UNAVAILABLE', `${named} No cloud credentials were found.`);
    default:
      return new CustosError('CUSTOS_ERR_SOURCE_UNAVAILABLE', named);
  }
}
