import { isLoopbackHost } from '../egress/loopback-host.js';
import { ResourceUrlError } from './resource-errors.js';

const MAX_URL_LENGTH = 2048;
/** Segments of RFC 3986 pchar without `%` (a path is never decoded twice) and `\`; one trailing `/` allowed. */
const PATH = /^(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*\/?$/;

/**
 * Validates a resource indicator (RFC 8707) and returns its canonical form,
 * the exact string a task token's `aud` carries for it.
 *
 * Used twice, with the same rules: when an operator registers a resource,
 * and on every `resource` a token exchange names — so "is this the
 * registered resource?" is a string comparison of two canonical forms, and
 * no spelling can reach a resource the canonical form does not name.
 *
 * - An absolute `https` URL (`http` only to a loopback host, for local
 *   servers and tests): a token minted for a resource is a bearer
 *   credential sent to it, and must not cross a network in clear.
 * - No fragment (RFC 8707 §2: MUST NOT) and no query (SHOULD NOT; refusing
 *   it keeps the comparison exact — `?a=1&b=2` and `?b=2&a=1` are two URIs).
 * - No userinfo: `https://mcp.example.com@evil.example` has the host
 *   `evil.example`, and a reader sees the other one.
 * - A plain path: no `.`/`..` or empty segments, no `%`, no `\`, so the
 *   WHATWG parser's silent repairs cannot make two spellings one resource.
 *
 * Canonical form: scheme and host lower-case (RFC 3986 §6.2.2.1, done by the
 * URL parser, IDNs in punycode), the default port dropped (§6.2.3), and an
 * empty path for the root, so `https://MCP.example.com:443/` is
 * `https://mcp.example.com` (the form the MCP authorization spec asks for).
 * Nothing else is normalised: the path keeps its case and a trailing slash
 * on a non-root path is significant (`/mcp` and `/mcp/` are two resources,
 * as RFC 3986 says) — refused rather than guessed equal.
 */
export function canonicalResourceUrl(text: string): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_URL_LENGTH) {
    throw new ResourceUrlError('The resource URL is 1–2048 characters.');
  }
  if (/[\s\u0000-\u001f\u007f\\]/.test(text)) {
    throw new ResourceUrlError('The resource URL has a control character, space or backslash.');
  }
  if (text.includes('#')) throw new ResourceUrlError('The resource URL must not have a fragment (RFC 8707).');
  if (text.includes('?')) throw new ResourceUrlError('The resource URL must not have a query.');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ResourceUrlError('The resource URL is not an absolute URL.');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new ResourceUrlError('The resource URL must use https (http only to a loopback host).');
  }
  // Also `https://@host`: an empty userinfo the parser drops, but a reader may not.
  if (url.username !== '' || url.password !== '' || /^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(text)) {
    throw new ResourceUrlError('The resource URL must not carry userinfo.');
  }
  // The path as written (the WHATWG parser would resolve `..` and `%2e` silently).
  const written = text.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '');
  if (!PATH.test(written) || written.split('/').some((s) => s === '.' || s === '..')) {
    throw new ResourceUrlError('The resource URL path must be plain: no ".", "..", empty segments, "%" or "\\".');
  }
  const path = written === '/' ? '' : written;
  return `${url.protocol}//${url.host}${path}`;
}
