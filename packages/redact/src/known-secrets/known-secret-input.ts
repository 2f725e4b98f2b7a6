import type { KnownSecret } from '../finding.js';

/** What `createRedactor({ secrets })` accepts for one secret: the value alone, or the value with its marker name. */
export type KnownSecretInput = string | KnownSecret;

/** The marker name of a secret given as a bare string: `[REDACTED:secret]`. */
export const DEFAULT_SECRET_NAME = 'secret';

const SHAPE = 'a string or { name: string, value: string }';

/** The error for a malformed `secrets` option. It names the position and the type found, never the value. */
function invalid(message: string): TypeError {
  const error = new TypeError(`createRedactor: ${message}`);
  // Node's own stable code for a wrong argument type, so callers can test for it.
  (error as TypeError & { code: string }).code = 'ERR_INVALID_ARG_TYPE';
  return error;
}

/** `typeof`, but saying `null` and `array` (for messages; never the value itself, which may be secret). */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * Normalises the `secrets` option: bare strings get the name
 * {@link DEFAULT_SECRET_NAME}; `{ name, value }` objects are kept (copied, so
 * a caller mutating its own objects later changes nothing). Anything else is
 * refused with a TypeError naming the expected shape. A string given instead
 * of a list is refused too: it is iterable, and would otherwise register each
 * of its characters — all of them too short — and silently hide nothing.
 */
export function normaliseKnownSecrets(secrets: unknown): KnownSecret[] {
  if (secrets === undefined || secrets === null) return [];
  if (typeof secrets === 'string') {
    throw invalid(`secrets must be a list (${SHAPE} each), not a string: write secrets: [value]`);
  }
  if (typeof (secrets as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
    throw invalid(`secrets must be an iterable of ${SHAPE}, got ${kindOf(secrets)}`);
  }
  const out: KnownSecret[] = [];
  let i = 0;
  for (const entry of secrets as Iterable<unknown>) {
    if (typeof entry === 'string') {
      out.push({ name: DEFAULT_SECRET_NAME, value: entry });
    } else if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
      const { name, value } = entry as { name?: unknown; value?: unknown };
      if (typeof value !== 'string') {
        throw invalid(`secrets[${i}].value must be a string, got ${kindOf(value)} (expected ${SHAPE})`);
      }
      if (typeof name !== 'string') {
        throw invalid(`secrets[${i}].name must be a string, got ${kindOf(name)} (expected ${SHAPE})`);
      }
      out.push({ name, value });
    } else {
      throw invalid(`secrets[${i}] must be ${SHAPE}, got ${kindOf(entry)}`);
    }
    i++;
  }
  return out;
}
