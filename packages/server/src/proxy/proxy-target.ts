import { CustosError, checkProxyPath, checkProxyQuery, UpstreamNotFoundError } from '@custos/core';

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** What a base-URL-mode request asks for: `/u/NAME<path>?<query>`. */
export interface ProxyTarget {
  upstream: string;
  /** Checked (checkProxyPath): `/` at least, appended to the base URL's path. */
  path: string;
  /** The raw query without `?`, checked (checkProxyQuery); '' for none. */
  query: string;
}

/**
 * Parses a base-URL-mode request target as the client sent it (`req.url`,
 * never the Host header): origin form (`/u/…`) only. Absolute URLs are
 * forward mode and never reach here (proxy-forward.ts: there too the URL
 * only selects among the upstreams the caller may use); anything else is
 * refused.
 */
export function parseProxyTarget(url: string, onName?: (name: string) => void): ProxyTarget {
  if (!url.startsWith('/')) {
    throw new CustosError('CUSTOS_ERR_PROXY_PATH_REFUSED', 'Only /u/NAME/… is served here (no absolute URLs).');
  }
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const m = /^\/u\/([^/]*)(\/.*)?$/s.exec(rawPath);
  if (!m) throw new CustosError('CUSTOS_ERR_ROUTE_NOT_FOUND', 'The proxy serves /u/NAME/<path>.');
  const name = m[1] as string;
  // A name no upstream can have is "not found" at once: nothing to learn from it.
  if (!NAME.test(name)) throw new UpstreamNotFoundError();
  // Known before the path is checked, so a refused path is audited against its upstream.
  onName?.(name);
  return { upstream: name, path: checkProxyPath(m[2] ?? '/'), query: checkProxyQuery(rawQuery) };
}
