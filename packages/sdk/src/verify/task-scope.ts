/*
 * Task scopes, as the server reads them: a copy of the semantics of
 * packages/core/src/policy/task-scope.ts (parseScope, isScopeSubset), kept
 * dependency-free for tools. `test/task-scope-parity.test.ts` runs one table
 * of cases through both and requires the same answers, so the two cannot
 * drift apart silently.
 */

/** The actions custos authorises (packages/core/src/policy/policy-action.ts). */
const ACTIONS: ReadonlySet<string> = new Set([
  'read',
  'write',
  'list',
  'delete',
  'issue',
  'delegate',
  'rotate',
  'revoke',
  'admin',
  'use',
  'approve',
]);

/** One `ACTION:PATTERN` entry: `prefix` for a pattern ending in `*`, which matches every path starting with `path`. */
export interface ScopeEntry {
  readonly action: string;
  readonly path: string;
  readonly prefix: boolean;
}

const MAX_SCOPE_ENTRIES = 64;
const MAX_PATTERN_LENGTH = 1024;
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Parses a scope (whitespace-separated `ACTION:PATTERN` entries), or returns
 * undefined where the server would refuse it: empty, more than 64 entries, an
 * unknown action, an empty or over-long pattern, a `*` anywhere but at the
 * end, a leading `/`, an empty, `.` or `..` segment, a control character.
 */
export function parseScope(text: string): ScopeEntry[] | undefined {
  const tokens = text.split(/\s+/).filter((t) => t.length > 0);
  if (tokens.length === 0 || tokens.length > MAX_SCOPE_ENTRIES) return undefined;
  const entries: ScopeEntry[] = [];
  for (const token of tokens) {
    const entry = parseEntry(token);
    if (entry === undefined) return undefined;
    entries.push(entry);
  }
  return entries;
}

function parseEntry(token: string): ScopeEntry | undefined {
  const colon = token.indexOf(':');
  if (colon < 0) return undefined;
  const action = token.slice(0, colon);
  const pattern = token.slice(colon + 1);
  if (!ACTIONS.has(action)) return undefined;
  if (pattern.length === 0 || pattern.length > MAX_PATTERN_LENGTH) return undefined;
  const star = pattern.indexOf('*');
  if (star >= 0 && star !== pattern.length - 1) return undefined;
  const prefix = star >= 0;
  const path = prefix ? pattern.slice(0, -1) : pattern;
  if (CONTROL.test(path) || path.startsWith('/')) return undefined;
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    // An empty last segment is a folder (`kv/a/`) or nothing before the `*`.
    if ((s === '' && i !== segments.length - 1) || s === '.' || s === '..') return undefined;
  }
  return { action, path, prefix };
}

/** Whether every path `required` matches, `held` matches too (same action). */
function entryCovers(held: ScopeEntry, required: ScopeEntry): boolean {
  if (held.action !== required.action) return false;
  if (held.prefix) return required.path.startsWith(held.path);
  return !required.prefix && required.path === held.path;
}

/**
 * Whether the `held` scope allows everything `required` names: each required
 * entry is covered by one held entry of the same action — exactly the
 * server's attenuation check (a child's scope against its parent's), and for
 * a single path (`read:kv/team/db`) exactly its `scopeAllows`.
 */
export function scopeCovers(held: readonly ScopeEntry[], required: readonly ScopeEntry[]): boolean {
  return required.every((r) => held.some((h) => entryCovers(h, r)));
}
