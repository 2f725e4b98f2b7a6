import { InvalidPathError } from '../errors/index.js';

/** Secrets live under this mount; `sys/…` and other roots are reserved for custos itself. */
export const SECRET_MOUNT = 'kv';
const MAX_PATH_LENGTH = 512;
const MAX_DEPTH = 32;
// A conservative alphabet: no whitespace, no control characters, no `%`
// (so a path is never decoded twice), no `\` (no alternative separator).
const SEGMENT = /^[A-Za-z0-9_@+=,~-][A-Za-z0-9._@+=,~-]*$/;

/**
 * Validates a secret path such as `kv/finance/enrichment-api` and returns it.
 *
 * Security: paths are policy resources, so two spellings of one path would let
 * a policy on one be bypassed through the other. Hence one canonical form is
 * accepted and everything else is refused rather than normalised: no `.`/`..`
 * segments (traversal), no empty segments (`a//b`), no leading or trailing
 * slash, no NUL or other control characters, no percent signs (double
 * decoding), a bounded length and depth.
 */
export function validateSecretPath(path: string): string {
  if (typeof path !== 'string' || path.length === 0 || path.length > MAX_PATH_LENGTH) {
    throw new InvalidPathError();
  }
  const segments = path.split('/');
  if (segments.length < 2 || segments.length > MAX_DEPTH || segments[0] !== SECRET_MOUNT) {
    throw new InvalidPathError(`Secret paths look like ${SECRET_MOUNT}/<name>[/<name>…].`);
  }
  for (const segment of segments) {
    if (!SEGMENT.test(segment)) throw new InvalidPathError();
  }
  return path;
}

/**
 * Validates a list prefix: the mount alone (`kv/`) or a valid path followed by
 * `/`. The empty prefix lists the mount.
 */
export function validateSecretPrefix(prefix: string): string {
  if (prefix === '' || prefix === SECRET_MOUNT || prefix === `${SECRET_MOUNT}/`) return `${SECRET_MOUNT}/`;
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return `${validateSecretPath(trimmed)}/`;
}
