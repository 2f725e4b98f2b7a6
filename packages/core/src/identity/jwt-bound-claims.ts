import type { JWTPayload } from 'jose';

/**
 * What a role requires of a federated token beyond a valid signature.
 *
 * - `claims`: every listed claim must be present and match. A claim name that
 *   starts with `/` is an RFC 6901 JSON Pointer into nested claims
 *   (`/kubernetes.io/namespace`); any other name is a top-level claim. An
 *   expected array means "any of these".
 * - `subject`: the exact `sub` (or any of a list).
 * - `matching`: `'exact'` (default) compares strings for equality. `'glob'`
 *   additionally lets an expected value ending in `*` match any claim value
 *   with that prefix (`repo:acme/payments:ref:refs/heads/*`); a `*` anywhere
 *   else is literal. Glob is opt-in because a trailing `*` in a binding that
 *   was meant literally would silently widen who can log in.
 *
 * A claim value that is an array of strings (e.g. `groups`) matches when any
 * of its members matches. Numbers, booleans and objects never match: bindings
 * compare strings only, so `"1"` cannot be satisfied by `true` or `1` through
 * some coercion rule.
 */
export interface JwtBinding {
  claims?: Record<string, string | string[]>;
  subject?: string | string[];
  matching?: 'exact' | 'glob';
}

/**
 * Returns true when `payload` satisfies every binding. An empty binding is
 * satisfied by any payload (the role then trusts every token of the issuer
 * for this audience, which the integrator should warn about).
 *
 * @example
 * ```ts
 * matchesBinding(payload, {
 *   subject: 'system:serviceaccount:agents:enricher',
 *   claims: { '/kubernetes.io/namespace': 'agents' },
 * });
 * ```
 */
export function matchesBinding(payload: JWTPayload, binding: JwtBinding): boolean {
  const glob = binding.matching === 'glob';
  if (binding.subject !== undefined && !matchesValue(payload.sub, binding.subject, glob)) return false;
  for (const [name, expected] of Object.entries(binding.claims ?? {})) {
    if (!matchesValue(claimValue(payload, name), expected, glob)) return false;
  }
  return true;
}

/**
 * A claim by name: an RFC 6901 JSON Pointer when it starts with `/`
 * (`/kubernetes.io/namespace`), a top-level claim otherwise. Own properties
 * only; `undefined` when absent.
 */
export function claimValue(payload: JWTPayload, name: string): unknown {
  return name.startsWith('/') ? resolvePointer(payload, name) : ownValue(payload, name);
}

function matchesValue(actual: unknown, expected: string | string[], glob: boolean): boolean {
  const wanted = typeof expected === 'string' ? [expected] : expected;
  const values = typeof actual === 'string' ? [actual] : Array.isArray(actual) ? actual : [];
  return values.some((v) => typeof v === 'string' && wanted.some((w) => matchesOne(v, w, glob)));
}

function matchesOne(actual: string, expected: string, glob: boolean): boolean {
  if (glob && expected.endsWith('*')) return actual.startsWith(expected.slice(0, -1));
  return actual === expected;
}

// Own properties only: a claim named "constructor" or "__proto__" must not
// resolve to something inherited from Object.prototype.
function ownValue(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return undefined;
  return Object.hasOwn(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
}

/** RFC 6901 JSON Pointer over objects (array indices are not needed for claims). */
function resolvePointer(root: unknown, pointer: string): unknown {
  let node: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    node = ownValue(node, raw.replaceAll('~1', '/').replaceAll('~0', '~'));
    if (node === undefined) return undefined;
  }
  return node;
}
