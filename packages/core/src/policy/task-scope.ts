import { ValidationError } from '../errors/index.js';
import { isPolicyAction, type PolicyAction } from './policy-action.js';

/**
 * One entry of a task scope: an action and a path pattern. `prefix` entries
 * (written with a trailing `*`) match every path that starts with `path`;
 * the others match `path` exactly.
 */
export interface ScopeEntry {
  readonly action: PolicyAction;
  /** The literal part of the pattern, without the trailing `*`. */
  readonly path: string;
  readonly prefix: boolean;
}

/** Most entries a scope may have: a scope is a short, reviewable list. */
export const MAX_SCOPE_ENTRIES = 64;
const MAX_PATTERN_LENGTH = 1024;
const CONTROL = /[\u0000-\u001f\u007f]/;

function bad(detail: string): ValidationError {
  return new ValidationError(`scope: ${detail}`);
}

/**
 * Parses a task scope: whitespace-separated `ACTION:PATTERN` entries, e.g.
 * `read:kv/team/a/* list:kv/team/a/ issue:pg-main/reader`. A `*` is allowed
 * only as the last character of a pattern and matches the rest of a path;
 * anything else matches exactly. Duplicate entries are dropped.
 *
 * Throws CUSTOS_ERR_VALIDATION for an empty scope, an unknown action, an
 * empty pattern, a `*` elsewhere, or a malformed path (leading `/`, `//`,
 * `.`/`..` segments, control characters), too long or too many entries.
 */
export function parseScope(text: string): ScopeEntry[] {
  const tokens = text.split(/\s+/).filter((t) => t.length > 0);
  if (tokens.length === 0) throw bad('empty');
  if (tokens.length > MAX_SCOPE_ENTRIES) throw bad(`more than ${MAX_SCOPE_ENTRIES} entries`);
  const seen = new Set<string>();
  const out: ScopeEntry[] = [];
  for (const token of tokens) {
    const entry = parseEntry(token);
    const key = formatEntry(entry);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(entry);
    }
  }
  return out;
}

function parseEntry(token: string): ScopeEntry {
  const colon = token.indexOf(':');
  if (colon < 0) throw bad('an entry is ACTION:PATTERN');
  const action = token.slice(0, colon);
  const pattern = token.slice(colon + 1);
  if (!isPolicyAction(action)) throw bad('unknown action');
  if (pattern.length === 0 || pattern.length > MAX_PATTERN_LENGTH) throw bad('pattern is empty or too long');
  const star = pattern.indexOf('*');
  if (star >= 0 && star !== pattern.length - 1) throw bad('"*" is allowed only at the end of a pattern');
  const prefix = star >= 0;
  const path = prefix ? pattern.slice(0, -1) : pattern;
  if (CONTROL.test(path) || path.startsWith('/')) throw bad('malformed pattern');
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    // An empty last segment is a folder (`kv/a/`) or nothing before the `*`.
    if ((s === '' && i !== segments.length - 1) || s === '.' || s === '..') throw bad('malformed pattern');
  }
  return { action, path, prefix };
}

/** Formats a scope back into its text form (`parseScope(formatScope(s))` equals `s`). */
export function formatScope(scope: readonly ScopeEntry[]): string {
  return scope.map(formatEntry).join(' ');
}

function formatEntry(e: ScopeEntry): string {
  return `${e.action}:${e.path}${e.prefix ? '*' : ''}`;
}

function entryAllows(e: ScopeEntry, action: PolicyAction, path: string): boolean {
  return e.action === action && (e.prefix ? path.startsWith(e.path) : path === e.path);
}

/** Whether `scope` allows `action` on `path`. */
export function scopeAllows(scope: readonly ScopeEntry[], action: PolicyAction, path: string): boolean {
  return scope.some((e) => entryAllows(e, action, path));
}

/** Whether every path `child` matches, `parent` matches too (same action). */
function entryCovers(parent: ScopeEntry, child: ScopeEntry): boolean {
  if (parent.action !== child.action) return false;
  if (parent.prefix) return child.path.startsWith(parent.path);
  return !child.prefix && child.path === parent.path;
}

/**
 * Whether `child` is an attenuation of `parent`: every child entry is covered
 * by one parent entry with the same action (`read:kv/a/b/*` and `read:kv/a/x`
 * are covered by `read:kv/a/*`; `read:kv/a/*` is not covered by `read:kv/a/b`).
 *
 * Checking entry by entry is exact, not just safe: a prefix set is covered by
 * a union of prefix sets and single paths only if one of those prefixes
 * covers it alone, so no union of parent entries covers more.
 */
export function isScopeSubset(child: readonly ScopeEntry[], parent: readonly ScopeEntry[]): boolean {
  return child.every((c) => parent.some((p) => entryCovers(p, c)));
}
