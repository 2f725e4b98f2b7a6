import type { RedactionEngine } from '../matcher/redaction-engine.js';
import type { Redactor } from '../redactor.js';
import { redactingErrorView } from './error-view.js';

/**
 * Key names whose values are masked whatever they contain. Anchored at the
 * end so `access_token` and `clientSecret` match but `max_tokens` and
 * `secretName` (LLM usage fields, references) do not.
 */
export const SENSITIVE_KEY =
  /(?:password|passwd|passphrase|pwd|secret|token|api[-_]?key|secret[-_]?key|access[-_]?key|private[-_]?key|authorization|cookie|credentials?|session[-_]?id|^auth)$/i;

export interface StructuredOptions {
  /** Keys whose values are masked regardless of content; default {@link SENSITIVE_KEY}. */
  sensitiveKey?: RegExp;
  /**
   * Keep Errors as Errors: each becomes a redacting view of the original
   * (same prototype, type, `cause` chain, `errors` of an AggregateError, own
   * and inherited properties; every value read through it redacted), so a
   * logger's error serialiser formats it exactly as it would the original.
   * Default false: an Error becomes a plain `{ name, message, stack, …own
   * enumerable properties }`, which `JSON.stringify` shows in full.
   */
  keepErrors?: boolean;
}

/**
 * Deep copy with masking. Plain objects, arrays, Maps and Sets are copied;
 * Errors become `{ name, message, stack }` with text scanned (or redacting
 * views, with `keepErrors`); other class instances (Dates, Buffers) are
 * returned as they are. Cycles are preserved as cycles in the copy.
 */
export function redactStructured<T>(
  value: T,
  engine: RedactionEngine,
  redactor: Redactor,
  options: StructuredOptions = {},
): T {
  const sensitive = options.sensitiveKey ?? SENSITIVE_KEY;
  const seen = new Map<object, unknown>();
  const mask = (key: string, v: unknown): unknown => {
    if (v === null || v === undefined || v === '' || typeof v === 'boolean') return v;
    const text = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
    return engine.replace({ kind: 'detector', ruleId: key, start: 0, end: text.length, value: text }, text);
  };
  // One rule for every value under a key: object and Map entries, and reads
  // through an error view ('' is a toJSON result, which has no key).
  const read = (key: string, v: unknown): unknown => (key !== '' && sensitive.test(key) ? mask(key, v) : walk(v));
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactor.redact(v);
    if (typeof v !== 'object' || v === null) return v;
    const done = seen.get(v);
    if (done !== undefined) return done;
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      seen.set(v, out);
      for (const item of v) out.push(walk(item));
      return out;
    }
    if (v instanceof Map) {
      const out = new Map<unknown, unknown>();
      seen.set(v, out);
      for (const [k, item] of v) out.set(k, typeof k === 'string' ? read(k, item) : walk(item));
      return out;
    }
    if (v instanceof Set) {
      const out = new Set<unknown>();
      seen.set(v, out);
      for (const item of v) out.add(walk(item));
      return out;
    }
    if (v instanceof Error && options.keepErrors === true) {
      const view = redactingErrorView(v, read);
      seen.set(v, view);
      return view;
    }
    if (v instanceof Error) {
      const out: Record<string, unknown> = {};
      seen.set(v, out);
      out.name = v.name;
      out.message = redactor.redact(v.message);
      if (v.stack) out.stack = redactor.redact(v.stack);
      for (const [k, item] of Object.entries(v)) out[k] = read(k, item);
      return out;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    const out: Record<string, unknown> = {};
    seen.set(v, out);
    for (const [k, item] of Object.entries(v)) out[k] = read(k, item);
    return out;
  };
  return walk(value) as T;
}
