import { CustosError } from '../errors/index.js';

/**
 * A policy name: lower-case letters, digits, `_`, `.`, `-`, starting with a
 * letter or digit, at most 64 characters. Names never contain `#`, so the
 * statement ids `NAME#N` in decisions are unambiguous.
 */
export const POLICY_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/** True if `name` is a valid policy name. */
export function isPolicyName(name: string): boolean {
  return POLICY_NAME_PATTERN.test(name);
}

/** Throws CUSTOS_ERR_VALIDATION unless `name` is a valid policy name. */
export function assertPolicyName(name: string): void {
  if (!isPolicyName(name)) {
    throw new CustosError('CUSTOS_ERR_VALIDATION', 'A policy name is 1-64 characters of a-z, 0-9, "_", "." and "-".');
  }
}
