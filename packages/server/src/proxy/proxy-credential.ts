const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i;
const BASIC = /^Basic +([A-Za-z0-9+/=]+)$/i;
const TOKEN = /^[A-Za-z0-9._~+/=-]+$/;

/**
 * The task token in one `Authorization` or `Proxy-Authorization` value:
 * `Bearer TOKEN`, or `Basic base64(ANY:TOKEN)` — the password of a proxy URL
 * with userinfo (`HTTPS_PROXY=http://task:TOKEN@127.0.0.1:8421`), which is
 * how clients that cannot send a bearer proxy header (Python requests,
 * httpx, curl, Node's env proxy) authenticate to a proxy. The user name is
 * ignored. Undefined when the value is neither.
 */
export function credentialToken(value: string): string | undefined {
  const text = value.trim();
  const bearer = BEARER.exec(text);
  if (bearer) return bearer[1];
  const basic = BASIC.exec(text);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const token = colon < 0 ? '' : decoded.slice(colon + 1);
  return TOKEN.test(token) ? token : undefined;
}
