import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

/** Prefix of every audit HMAC, so readers and checks know what the value is. */
export const AUDIT_HMAC_PREFIX = 'hmac-sha256:';

const AUDIT_HMAC_PATTERN = /^hmac-sha256:[0-9a-f]{64}$/;

/** Computes `hmac-sha256:<hex>` of a value with the deployment's audit key. */
export type AuditHmac = (value: string | Uint8Array) => string;

/**
 * Binds the audit key and returns the HMAC function used for every
 * correlatable value in audit events (and by `POST /v1/audit/hash`, so an
 * operator holding a known value can find the events that mention it).
 *
 * The key is copied into a `KeyObject` at once, so the caller may zero its
 * buffer after this call; it is never exposed again. Strings are hashed as
 * their UTF-8 bytes.
 *
 * @param key - the 32-byte audit key, kept behind the barrier by the caller.
 * @example
 * const hmac = createAuditHmac(auditKey);
 * const event = { …, data: { token: hmac(token) } };
 */
export function createAuditHmac(key: Uint8Array): AuditHmac {
  // A full-strength random key is what keeps HMACs of low-entropy values
  // (passwords, short ids) from being brute-forced by whoever reads the log.
  if (key.byteLength !== 32) throw new RangeError('the audit key must be 32 bytes');
  const keyObject: KeyObject = createSecretKey(Buffer.from(key));
  return (value) => AUDIT_HMAC_PREFIX + createHmac('sha256', keyObject).update(value).digest('hex');
}

/** True when `value` has the exact form {@link createAuditHmac} produces. */
export function isAuditHmac(value: unknown): value is string {
  return typeof value === 'string' && AUDIT_HMAC_PATTERN.test(value);
}
