import { isLoopbackHost } from '../egress/loopback-host.js';
import { UpstreamUrlError } from './upstream-errors.js';

const MAX_URL_LENGTH = 2048;
/** Path characters kept as written: RFC 3986 pchar without `%` (so a path is never decoded twice) and `\`. */
const PATH = /^(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*$/;

/**
 * Validates an upstream's base URL and returns it normalised
 * (`https://api.example.com/v1`, no trailing slash).
 *
 * The base URL is the one place the credential may go, so it is refused
 * rather than repaired when it is ambiguous:
 * - `https`, or `http` only to a loopback host (the same rule as a webhook
 *   rotator's URL: a credential never crosses a network in clear);
 * - no userinfo (`user:pass@` would be a second credential, and hides the
 *   host from a reader), no query and no fragment (the proxy appends the
 *   caller's query; a fixed one would merge with it unpredictably);
 * - a plain path: no `.`/`..` or empty segments, no `%` or `\`, so the prefix
 *   every proxied path is appended to is exactly what the operator read.
 */
export function validateBaseUrl(text: string): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_URL_LENGTH) {
    throw new UpstreamUrlError('The base URL is 1–2048 characters.');
  }
  if (/[\s\u0000-\u001f\u007f\\]/.test(text))
    throw new UpstreamUrlError('The base URL has a control character, space or backslash.');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UpstreamUrlError('The base URL does not parse.');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new UpstreamUrlError('The base URL must use https (http only to a loopback host).');
  }
  if (text.includes('@') && (url.username !== '' || url.password !== '' || /^[a-z]+:\/\/[^/]*@/i.test(text))) {
    throw new UpstreamUrlError('The base URL must not carry credentials.');
  }
  if (text.includes('?') || text.includes('#')) {
    throw new UpstreamUrlError('The base URL must not have a query or a fragment.');
  }
  // The path as written (the WHATWG parser would resolve `..` silently).
  const written = text.replace(/^[a-z]+:\/\/[^/]*/i, '');
  const path = written.replace(/\/$/, '');
  if (!PATH.test(path) || path.split('/').some((s) => s === '.' || s === '..')) {
    throw new UpstreamUrlError('The base URL path must be plain: no ".", "..", empty segments, "%" or "\\".');
  }
  return `${url.protocol}//${url.host}${path}`;
}
