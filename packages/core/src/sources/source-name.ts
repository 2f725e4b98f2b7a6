import { CustosError } from '../errors/index.js';
import { SECRET_MOUNT } from '../secrets/secret-path.js';

/** Source names: one kv path segment, lower-case, so `kv/<name>/…` has one spelling. */
export const SOURCE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/**
 * Validates a source name. Security: the name becomes the first segment of
 * a kv mount, a policy resource; anything that could be a second spelling or
 * step out of `kv/` (`..`, `/`, `%2e`, upper case) is refused, not repaired.
 */
export function validateSourceName(name: string): string {
  if (typeof name !== 'string' || !SOURCE_NAME.test(name)) {
    throw new CustosError('CUSTOS_ERR_SOURCE_INVALID', 'The source name is 1–63 of a-z, 0-9, _ and -.');
  }
  return name;
}

/** The policy resource managing a source is authorised on (`write`, `read`, `delete`, `list` on `sys/sources/`). */
export function sourceConfigResource(name: string): string {
  return `sys/sources/${name}`;
}

/** The kv prefix a source is mounted at: `kv/<name>/`. */
export function sourceMountPrefix(name: string): string {
  return `${SECRET_MOUNT}/${name}/`;
}

/** The source name of a (validated) secret path's mount segment, and the rest: `kv/aws-prod/db/main` → `aws-prod`, `db/main`. */
export function splitMountedPath(path: string): { source: string; rest: string } | undefined {
  const segments = path.split('/');
  if (segments.length < 3 || segments[0] !== SECRET_MOUNT) return undefined;
  const source = segments[1] as string;
  if (!SOURCE_NAME.test(source)) return undefined;
  return { source, rest: segments.slice(2).join('/') };
}
