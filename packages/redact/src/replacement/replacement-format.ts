import { createHmac } from 'node:crypto';
import type { Finding } from '../finding.js';

/**
 * How a finding is replaced:
 * - a template string, where `{name}` is the detector id or known secret's
 *   name and `{hash}` a keyed hash (needs `hashKey`);
 * - `{ template?, hashKey }`: a template (default `[REDACTED:{name}:{hash}]`)
 *   with a keyed hash, so equal secrets get equal markers without the marker
 *   revealing anything to whoever lacks the key;
 * - a function of the finding.
 * The default is `[REDACTED:{name}]`.
 */
export type Replacement =
  | string
  | ((finding: Finding) => string)
  | { readonly template?: string; readonly hashKey: string | Uint8Array; readonly hashLength?: number };

/** Finding plus what the hash is computed over (the raw secret for known ones). */
export type Replace = (finding: Finding, canonical: string) => string;

export const DEFAULT_TEMPLATE = '[REDACTED:{name}]';

export function compileReplacement(replacement: Replacement | undefined): Replace {
  if (typeof replacement === 'function') return (f) => replacement(f);
  if (replacement === undefined || typeof replacement === 'string') {
    const template = replacement ?? DEFAULT_TEMPLATE;
    if (template.includes('{hash}')) throw new TypeError('a {hash} template needs a hashKey');
    return (f) => template.replaceAll('{name}', f.ruleId);
  }
  const template = replacement.template ?? '[REDACTED:{name}:{hash}]';
  const key = replacement.hashKey;
  const length = replacement.hashLength ?? 12;
  // Markers repeat a lot in logs; cache per canonical value so each distinct
  // secret is hashed once. The cache keeps secrets in memory only as long as
  // the redactor, which already holds them.
  const cache = new Map<string, string>();
  return (f, canonical) => {
    let hash = cache.get(canonical);
    if (hash === undefined) {
      hash = createHmac('sha256', key).update(canonical).digest('hex').slice(0, length);
      if (cache.size < 10_000) cache.set(canonical, hash);
    }
    return template.replaceAll('{name}', f.ruleId).replaceAll('{hash}', hash);
  };
}
