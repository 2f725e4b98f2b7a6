import { ValidationError } from '@custos/core';

// NUL cannot be stored in PostgreSQL text, and a lone surrogate has no UTF-8
// form: the drivers would silently encode it as U+FFFD, so two different keys
// would alias one row. Refusing both keeps key identity exact on every adapter.
const BAD_KEY = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throws {@link ValidationError} unless `s` is a well-formed string without NUL. */
export function assertKey(s: string): void {
  if (typeof s !== 'string' || BAD_KEY.test(s)) {
    throw new ValidationError('Storage keys must be well-formed UTF-8 without NUL.');
  }
}

/** Throws {@link ValidationError} unless `expiresAt` is absent, null or a safe integer. */
export function assertExpiry(expiresAt: number | null | undefined): void {
  if (expiresAt !== undefined && expiresAt !== null && !Number.isSafeInteger(expiresAt)) {
    throw new ValidationError('Expiry must be an integer number of epoch milliseconds.');
  }
}
