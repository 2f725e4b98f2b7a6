import { parseEgressRule } from '../egress/egress-rule.js';
import { UpstreamAllowError } from './upstream-errors.js';

/** Methods an upstream may allow. CONNECT and TRACE never: one opens a tunnel, the other reflects headers (the credential). */
export const UPSTREAM_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const METHOD_SET: ReadonlySet<string> = new Set(UPSTREAM_METHODS);
const MAX_ENTRIES = 64;
/** The path alphabet of allow patterns and proxied paths (no `%`, `\`, `?`, `#`). */
const PATH_PATTERN = /^\/[A-Za-z0-9._~!$&'()+,;=:@/-]*\*?$/;

function list(values: readonly string[] | undefined, what: string): string[] {
  if (values === undefined) return [];
  if (!Array.isArray(values) || values.length > MAX_ENTRIES || values.some((v) => typeof v !== 'string')) {
    throw new UpstreamAllowError(`${what} is a list of at most ${MAX_ENTRIES} strings.`);
  }
  return [...new Set(values)];
}

/**
 * Allow-path patterns, relative to the base URL's path: `/chat/completions`
 * matches exactly, `/v1/*` every path that starts with `/v1/`. `*` only at
 * the end; no `.`/`..` or empty segments, no `%`: the proxied path is
 * checked for the same (see upstream-path.ts), so a pattern and a path can
 * only match in one spelling.
 */
export function validateAllowPaths(values: readonly string[] | undefined): string[] {
  const paths = list(values, 'allow_paths');
  for (const p of paths) {
    const body = p.endsWith('*') ? p.slice(0, -1) : p;
    const bad =
      p.length > 1024 ||
      !PATH_PATTERN.test(p) ||
      body.includes('//') ||
      body.split('/').some((s) => s === '.' || s === '..');
    if (bad) throw new UpstreamAllowError('An allow-path is /… with "*" only at the end, no ".", "..", "//" or "%".');
  }
  return paths;
}

/** Allow-methods, upper-cased; each one of {@link UPSTREAM_METHODS}. */
export function validateAllowMethods(values: readonly string[] | undefined): string[] {
  const methods = list(values, 'allow_methods').map((m) => m.toUpperCase());
  for (const m of methods) {
    if (!METHOD_SET.has(m)) throw new UpstreamAllowError(`An allow-method is one of ${UPSTREAM_METHODS.join(', ')}.`);
  }
  return [...new Set(methods)];
}

/** Allow-hosts: egress allow entries (`127.0.0.1:8080`, `api.example.com`, `10.0.0.0/8`), parsed now so a typo fails here. */
export function validateAllowHosts(values: readonly string[] | undefined): string[] {
  const hosts = list(values, 'allow_hosts').map((h) => h.trim());
  for (const h of hosts) {
    if (h.startsWith('unix:')) throw new UpstreamAllowError('An allow-host is a host, address or CIDR, not a socket.');
    try {
      parseEgressRule(h);
    } catch (error) {
      throw new UpstreamAllowError((error as Error).message);
    }
  }
  return hosts;
}

/** Whether the upstream allows `method`. */
export function methodAllowed(allowed: readonly string[], method: string): boolean {
  return allowed.length === 0 ? METHOD_SET.has(method) : allowed.includes(method);
}

/** Whether a normalised proxied path matches one of the patterns (none = every path). */
export function pathAllowed(patterns: readonly string[], path: string): boolean {
  if (patterns.length === 0) return true;
  return patterns.some((p) => (p.endsWith('*') ? path.startsWith(p.slice(0, -1)) : path === p));
}
