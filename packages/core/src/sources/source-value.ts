import { CustosError, isCustosError } from '../errors/index.js';
import { MAX_VALUE_BYTES, validateSecretData } from '../secrets/secret-data.js';
import type { SecretData } from '../secrets/secret-types.js';
import type { SourceFormat, SourceValue } from './source-types.js';

/**
 * Turns a cloud value into kv fields, as a kv read answers them:
 * - a JSON object (AWS's key/value secrets; Azure with content type
 *   `application/json`) becomes its fields: strings as they are, numbers and
 *   booleans as their text, nested values as their JSON text;
 * - anything else becomes one `value` field.
 *
 * Refusals, each with its code and never the value:
 * - larger than the kv write limit (the same 512 KiB a `secret put` field
 *   may hold): CUSTOS_ERR_SOURCE_SECRET_TOO_LARGE. Checked *before* parsing,
 *   so a huge or deeply nested answer never reaches JSON.parse;
 * - declared JSON (format `json`, Azure's content type, or `auto` and the
 *   value starts with `{`) that does not parse to an object, or whose field
 *   names a kv secret cannot have: CUSTOS_ERR_SOURCE_SECRET_MALFORMED. A
 *   value meant as JSON is not silently served as one opaque string: the
 *   task would get a different shape than the secret's owner wrote.
 */
export function sourceValueToData(input: SourceValue, format: SourceFormat): SecretData {
  const { value } = input;
  if (Buffer.byteLength(value) > MAX_VALUE_BYTES) throw new CustosError('CUSTOS_ERR_SOURCE_SECRET_TOO_LARGE');
  const declaredJson =
    format === 'json' ||
    (format === 'auto' && (/^application\/json\b/i.test(input.content_type ?? '') || /^\s*\{/.test(value)));
  if (format === 'raw' || !declaredJson) return { value };
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new CustosError('CUSTOS_ERR_SOURCE_SECRET_MALFORMED');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CustosError('CUSTOS_ERR_SOURCE_SECRET_MALFORMED');
  }
  const data: Record<string, string> = {};
  for (const [name, field] of Object.entries(parsed as Record<string, unknown>)) {
    data[name] = typeof field === 'string' ? field : typeof field === 'object' ? JSON.stringify(field) : String(field);
  }
  try {
    return validateSecretData(data);
  } catch (error) {
    // The validation message names a field, never a value; the code says
    // whose fault it is (the source's secret, not the caller's request).
    if (isCustosError(error)) throw new CustosError('CUSTOS_ERR_SOURCE_SECRET_MALFORMED', error.detail);
    throw error;
  }
}
