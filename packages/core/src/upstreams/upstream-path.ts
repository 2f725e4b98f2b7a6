import { ProxyPathRefusedError } from './upstream-errors.js';

const MAX_PATH_LENGTH = 4096;
/** Percent-encodings that decode to a separator, a dot, a `%`, or a control character. */
const DANGEROUS_ESCAPE = /%(2e|2f|5c|25|[01][0-9a-f]|7f)/i;
const PATH_CHARS = /^[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/;

/**
 * Checks the path a caller asks for below an upstream (`/u/NAME<path>`) and
 * returns it (`/` for none). It is appended to the base URL's path, so it
 * must not be able to leave it once the upstream — or any intermediary —
 * decodes and normalises it. Refused rather than normalised, because
 * normalising would make custos and the upstream disagree about what the
 * path is:
 *
 * - `.`/`..` segments and empty segments (`//`): traversal, or a path some
 *   servers collapse and others do not;
 * - `%2e` (`.`), `%2f` (`/`), `%5c` (`\`) and `%25` (`%`, double encoding):
 *   traversal once decoded;
 * - `\` raw (a separator to some servers), and any control character,
 *   encoded (`%0d%0a`: header injection downstream) or not.
 *
 * Other percent-encodings pass as written: the upstream decodes them, and
 * none of them can become a separator.
 */
export function checkProxyPath(raw: string): string {
  const path = raw === '' ? '/' : raw;
  if (path.length > MAX_PATH_LENGTH) throw new ProxyPathRefusedError('The path is longer than 4096 characters.');
  if (!path.startsWith('/')) throw new ProxyPathRefusedError('The path must start with "/".');
  if (!PATH_CHARS.test(path)) throw new ProxyPathRefusedError('The path has a character custos does not forward.');
  if (DANGEROUS_ESCAPE.test(path)) {
    throw new ProxyPathRefusedError('The path encodes a dot, slash, backslash, percent or control character.');
  }
  if (/%(?![0-9a-f]{2})/i.test(path)) throw new ProxyPathRefusedError('The path has a malformed percent-encoding.');
  const segments = path.split('/').slice(1);
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if ((s === '' && i !== segments.length - 1) || s === '.' || s === '..') {
      throw new ProxyPathRefusedError('The path has ".", ".." or empty segments.');
    }
  }
  return path;
}

/**
 * Checks a caller's raw query string (without `?`): no control character,
 * raw or encoded (`%0d%0a` would reach whatever logs or re-parses it), no
 * `#`. It is otherwise forwarded as written.
 */
export function checkProxyQuery(raw: string): string {
  if (raw.length > 8192) throw new ProxyPathRefusedError('The query is longer than 8192 characters.');
  if (/[\u0000-\u0020\u007f#\\]/.test(raw) || /%([01][0-9a-f]|7f)/i.test(raw)) {
    throw new ProxyPathRefusedError('The query has a control character, space or backslash.');
  }
  return raw;
}
