import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { type InjectRule, renderInject } from '@custos/core';
import type { Redactor } from '@custos/redact';

/**
 * Headers that describe one connection (RFC 9110 §7.6.1), never forwarded
 * in either direction; plus, on the way out, those that carry the caller's
 * custos token or decide where the request goes.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Request headers custos never forwards:
 * - `authorization`, `proxy-authorization`, `x-custos-token`, `dpop`: the
 *   caller's custos credential — the upstream must never see a task token;
 * - `host`: the destination is the upstream's base URL, whatever the caller
 *   wrote (Node sets Host from it);
 * - `accept-encoding`: replaced by `identity`, since a compressed answer could
 *   not pass through the redactor;
 * - `expect`: custos answers `100-continue` itself; `content-length` is set
 *   again only when the caller declared one (a chunked body stays chunked).
 */
const NOT_FORWARDED = new Set([
  ...HOP_BY_HOP,
  'authorization',
  'x-custos-token',
  'dpop',
  'host',
  'accept-encoding',
  'expect',
  'content-length',
]);

/** Names listed in the caller's `Connection` header are hop-by-hop too (RFC 9110 §7.6.1). */
function connectionNames(headers: IncomingHttpHeaders): Set<string> {
  const value = headers.connection;
  return new Set(
    (typeof value === 'string' ? value : '')
      .split(',')
      .map((n) => n.trim().toLowerCase())
      .filter(Boolean),
  );
}

/**
 * The headers sent to the upstream: the caller's, minus everything above and
 * anything an inject rule sets (the caller cannot pre-empt or duplicate the
 * credential header), plus the injected ones.
 */
export function upstreamRequestHeaders(
  req: IncomingMessage,
  rules: readonly InjectRule[],
  value: string,
): OutgoingHttpHeaders {
  const dropped = connectionNames(req.headers);
  const injected = new Set(rules.filter((r) => r.target === 'header').map((r) => r.name));
  const out: Record<string, string | string[]> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (NOT_FORWARDED.has(name) || dropped.has(name) || injected.has(name)) continue;
    const previous = out[name];
    const v = raw[i + 1] as string;
    out[name] = previous === undefined ? v : Array.isArray(previous) ? [...previous, v] : [previous, v];
  }
  const length = req.headers['content-length'];
  if (length !== undefined) out['content-length'] = length;
  out['accept-encoding'] = 'identity';
  for (const rule of rules) if (rule.target === 'header') out[rule.name] = renderInject(rule, value);
  return out;
}

/**
 * The query sent to the upstream: the caller's as written, without any
 * parameter an inject rule sets (so the upstream cannot pick the caller's
 * `key=` over custos's), then the injected ones, percent-encoded.
 */
export function upstreamQuery(query: string, rules: readonly InjectRule[], value: string): string {
  const names = new Set(rules.filter((r) => r.target === 'query').map((r) => r.name));
  const kept =
    names.size === 0
      ? query
      : query
          .split('&')
          .filter((pair) => {
            if (pair === '') return false;
            const key = pair.split('=')[0] as string;
            let decoded: string;
            try {
              decoded = decodeURIComponent(key.replace(/\+/g, ' '));
            } catch {
              return false;
            }
            return !names.has(decoded);
          })
          .join('&');
  const added = rules
    .filter((r) => r.target === 'query')
    .map((r) => `${encodeURIComponent(r.name)}=${encodeURIComponent(renderInject(r, value))}`);
  return [kept, ...added].filter((p) => p !== '').join('&');
}

/** Set on the proxy's own refusals only (never passed from an upstream): the custos code. */
export const PROXY_ERROR_HEADER = 'x-custos-proxy-error';

/**
 * The upstream's response headers as the caller gets them: hop-by-hop ones
 * and `content-length` dropped (the redacted body may differ in length; it is
 * sent chunked), the proxy's own refusal marker dropped (an upstream cannot
 * pose as a custos refusal), and every value redacted — an upstream that echoes the key
 * in a header or in a redirect's `Location` (a query-injected key) must not
 * hand it to the caller that way either.
 */
export function callerResponseHeaders(res: IncomingMessage, redactor: Redactor): OutgoingHttpHeaders {
  const dropped = connectionNames(res.headers);
  const out: Record<string, string | string[]> = {};
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name) || dropped.has(name) || name === 'content-length' || name === PROXY_ERROR_HEADER) {
      continue;
    }
    const v = redactor.redact(raw[i + 1] as string);
    const previous = out[name];
    out[name] = previous === undefined ? v : Array.isArray(previous) ? [...previous, v] : [previous, v];
  }
  return out;
}

/**
 * Whether a response body can pass through the redactor: no content coding
 * (custos asked for `identity`; a compressed body would hide the key from
 * it), and text in UTF-8 — JSON, SSE, XML, forms, plain text — or no type
 * at all. Anything else (binary, another charset) is refused rather than
 * passed on unredacted.
 */
export function redactableResponse(headers: IncomingHttpHeaders): string | undefined {
  const coding = headers['content-encoding']?.trim().toLowerCase();
  if (coding && coding !== 'identity') return 'The upstream sent a compressed answer.';
  const type = headers['content-type']?.toLowerCase();
  if (type === undefined) return undefined;
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/.exec(type)?.[1];
  if (charset && charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii') {
    return 'The upstream answered in a charset other than UTF-8.';
  }
  const essence = type.split(';')[0]?.trim() ?? '';
  const text =
    essence.startsWith('text/') ||
    /^application\/([\w.-]+\+)?(json|xml)$/.test(essence) ||
    [
      'application/x-ndjson',
      'application/jsonl',
      'application/x-www-form-urlencoded',
      'application/javascript',
    ].includes(essence);
  return text ? undefined : 'The upstream answered with a binary content type.';
}
