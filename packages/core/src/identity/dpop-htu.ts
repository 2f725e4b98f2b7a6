/**
 * Normalises an HTTP URI for the DPoP `htu` comparison (RFC 9449 §4.3: the
 * request URI without query and fragment, compared after RFC 3986 §6.2.2 and
 * §6.2.3 normalisation). The WHATWG URL parser already lowercases scheme and
 * host, drops default ports and resolves dot segments; on top of that the
 * percent-encodings are made uppercase and unreserved characters decoded, so
 * `/v1/%7Euser` and `/v1/~user` compare equal. Returns `undefined` for
 * anything that is not an absolute http(s) URL.
 */
export function normalizeHtu(input: string): string | undefined {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username || url.password) return undefined;
  const path = url.pathname.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => {
    const ch = String.fromCharCode(Number.parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
  return `${url.protocol}//${url.host}${path}`;
}
