import { InvalidPathError } from '../errors/index.js';

/** The longest path the policy engine accepts. */
export const MAX_PATH_LENGTH = 1024;

/**
 * The folder prefixes of a path, nearest first: `kv/finance/enrichment-api`
 * → `kv/finance/`, `kv/`. A folder path (`kv/finance/`) has its parents only,
 * since Cedar's `in` is reflexive. These become the Cedar parents of the
 * resource entity, so `resource in Custos::Path::"kv/finance/"` covers
 * everything below that folder.
 *
 * Throws CUSTOS_ERR_INVALID_PATH for empty, over-long or malformed paths (a
 * leading `/`, an empty segment, `.`/`..` segments or control characters):
 * two spellings of one path must not be able to dodge a prefix rule.
 */
export function pathAncestors(path: string): string[] {
  assertPolicyPath(path);
  const ancestors: string[] = [];
  for (let i = path.length - 2; i > 0; i--) {
    if (path.charCodeAt(i) === 47 /* / */) ancestors.push(path.slice(0, i + 1));
  }
  return ancestors;
}

const CONTROL = /[\u0000-\u001f\u007f]/;

function assertPolicyPath(path: string): void {
  if (path.length === 0 || path.length > MAX_PATH_LENGTH || CONTROL.test(path)) throw new InvalidPathError();
  const segments = path.split('/');
  // A trailing `/` (a folder) leaves one empty last segment; any other empty
  // segment means a leading `/` or `//`.
  const last = segments.length - 1;
  for (let i = 0; i <= last; i++) {
    const s = segments[i] as string;
    if ((s === '' && i !== last) || s === '.' || s === '..') throw new InvalidPathError();
  }
}
