import { formatDuration, parseDuration } from '@custos/core';
import { CliError, EXIT } from './cli-io.js';

/** How long the CLI waits for the server's answer unless told otherwise. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

// setTimeout holds at most 2^31-1 ms (about 24.8 days); beyond, Node fires at once.
const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * The request timeout in ms (0: no limit): `--timeout` (the program's option,
 * kept as `requestTimeout`) wins over `CUSTOS_TIMEOUT`, which wins over 30 s.
 * Durations as everywhere in the CLI: `10s`, `2m`, `1m30s`, bare seconds.
 *
 * @throws CliError CUSTOS_ERR_USAGE (exit 2) naming where the bad value came from.
 */
export function resolveRequestTimeout(io: { env: NodeJS.ProcessEnv; requestTimeout?: string | undefined }): number {
  const [text, source] =
    io.requestTimeout !== undefined
      ? [io.requestTimeout, '--timeout']
      : io.env.CUSTOS_TIMEOUT
        ? [io.env.CUSTOS_TIMEOUT, 'CUSTOS_TIMEOUT']
        : [undefined, ''];
  if (text === undefined) return DEFAULT_REQUEST_TIMEOUT_MS;
  const trimmed = text.trim();
  if (/^0+$/.test(trimmed)) return 0;
  try {
    return parseDuration(trimmed, MAX_TIMEOUT_MS);
  } catch {
    throw new CliError(
      'CUSTOS_ERR_USAGE',
      `${source} is a duration such as 10s, 2m or 0 (no limit), at most 24d; got "${trimmed.slice(0, 40)}"`,
      EXIT.usage,
    );
  }
}

/** The one error every timed-out request ends with: where, how long, and how to wait longer. */
export function requestTimeoutError(addr: string, timeoutMs: number): CliError {
  // formatDuration drops milliseconds beyond a second: 1500 ms must not read "1s".
  const shown = timeoutMs % 1_000 === 0 ? formatDuration(timeoutMs) : `${timeoutMs}ms`;
  return new CliError(
    'CUSTOS_ERR_TIMEOUT',
    `no answer from ${addr} within ${shown}; wait longer with --timeout (e.g. --timeout 2m) or CUSTOS_TIMEOUT, 0 for no limit`,
    EXIT.timeout,
  );
}

/**
 * Runs `run` with a signal that aborts after `timeoutMs` (never when 0), and
 * turns that abort into {@link requestTimeoutError}. What `run` covers is what
 * the deadline bounds: a whole exchange (status and body), or — for a stream —
 * only the wait for the server's first answer, by returning as soon as the
 * headers are in (a later abort can then no longer happen: the timer is
 * cleared when `run` settles).
 */
export async function withRequestTimeout<T>(
  addr: string,
  timeoutMs: number,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const timer = timeoutMs > 0 ? setTimeout(() => controller.abort(), timeoutMs) : undefined;
  try {
    return await run(controller.signal);
  } catch (error) {
    if (controller.signal.aborted) throw requestTimeoutError(addr, timeoutMs);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
