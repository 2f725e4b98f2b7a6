import { ValidationError } from '../errors/index.js';
import type { SecretData } from './secret-types.js';

const FIELD_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const MAX_FIELDS = 256;
/** The largest field value custos stores or serves (a kv write, a value read through a source). */
export const MAX_VALUE_BYTES = 512 * 1024;

/**
 * Checks that a value is a flat object of string fields. The error names the
 * offending field *name* (not secret) but never echoes a value.
 */
export function validateSecretData(data: unknown): SecretData {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ValidationError('A secret is an object of string fields.');
  }
  const entries = Object.entries(data);
  if (entries.length === 0) throw new ValidationError('A secret needs at least one field.');
  if (entries.length > MAX_FIELDS) throw new ValidationError(`A secret has at most ${MAX_FIELDS} fields.`);
  for (const [name, value] of entries) {
    if (!FIELD_NAME.test(name)) throw new ValidationError('Field names use letters, digits, "_", "." and "-".');
    if (typeof value !== 'string') throw new ValidationError(`Field "${name}" must be a string.`);
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES) throw new ValidationError(`Field "${name}" is too large.`);
  }
  return data as SecretData;
}
