import { policySetTextToParts, policyToJson } from './cedar-runtime.js';

/**
 * Attributes principals once had and no longer do, with the sentence a
 * policy author needs instead of Cedar's "attribute not found".
 *
 * `display_name` is chosen by whoever creates a token (anything but `root`),
 * so a policy on it could be satisfied — or a `forbid` on it escaped — by
 * naming a token. It is cosmetic now: shown in listings and audit events,
 * never given to Cedar.
 */
const RETIRED: Readonly<Record<string, string>> = {
  display_name:
    'principal.display_name is not a policy attribute (a token’s creator chooses it); name a token by its accessor, principal == Custos::Token::"acc_…", or by the policies it holds',
};

/**
 * The explanation for the first retired attribute `text` reads or tests
 * (`x.display_name`, `x has display_name`), or `undefined`. Checked on the
 * statements' JSON form, so a string that merely contains the word (a path,
 * a value) is not mistaken for one. A text that does not parse has none.
 *
 * Both uses are refused: a plain read fails Cedar's validation anyway (with
 * a less helpful message), and a `has` test validates but is always false,
 * which would silently disarm a `forbid` that relied on it.
 */
export function retiredAttributeIn(text: string): string | undefined {
  const parts = policySetTextToParts(text);
  if (parts.type === 'failure') return undefined;
  for (const statement of parts.policies) {
    const json = policyToJson(statement);
    if (json.type === 'failure') continue;
    const found = findRetired(json.json);
    if (found) return RETIRED[found];
  }
  return undefined;
}

function findRetired(node: unknown): string | undefined {
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = findRetired(item);
      if (found) return found;
    }
    return undefined;
  }
  if (node === null || typeof node !== 'object') return undefined;
  for (const [key, value] of Object.entries(node)) {
    if ((key === '.' || key === 'has') && value !== null && typeof value === 'object') {
      const attr = (value as { attr?: unknown }).attr;
      if (typeof attr === 'string' && Object.hasOwn(RETIRED, attr)) return attr;
    }
    const found = findRetired(value);
    if (found) return found;
  }
  return undefined;
}
