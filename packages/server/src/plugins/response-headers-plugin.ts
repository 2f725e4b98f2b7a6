import { DEFAULT_DPOP_ALGORITHMS } from '@custos/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type CredentialScheme, requestCredential } from './request-credentials.js';

/**
 * The console's policy: its own script, style and API only, nothing inline
 * (so an injected `<script>` or `style=` cannot run even if escaping ever
 * failed), images from itself or `data:`, never framed (clickjacking an
 * approve button), no `<base>` rewriting relative URLs, no form posting
 * anywhere.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * Every other response is JSON, text or an event stream, never a document
 * to render: if a browser is ever made to render one, nothing in it may load
 * or run, and it may not be framed.
 */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** The DPoP proof algorithms custos verifies, as a 401 challenge names them (RFC 9449 §7.1). */
export const DPOP_CHALLENGE_ALGS = DEFAULT_DPOP_ALGORITHMS.join(' ');

/**
 * Response headers that protect what a response carries, set in one hook for
 * every response (errors and unknown routes included), after the audit hook
 * has settled the status.
 *
 * **Caching.** Almost every custos response can carry a token or a secret:
 * logins, task starts, exchanges and reissues answer with task tokens, token
 * creation with an operator token, reads and leases with secret values, and
 * even a listing or an error names paths an attacker may not know. So the rule
 * fails closed: every response is `Cache-Control: no-store` with
 * `Pragma: no-cache` (RFC 6749 §5.1 asks both of token responses; RFC 9111
 * §5.2.2.5 keeps it out of every cache, shared or private, including a
 * browser's or a proxy's disk). The only exceptions are routes that declare
 * `config.publicCache` — public documents that are the same for everyone and
 * hold nothing secret (the JWKS, RFC 8414 metadata, the OpenAPI document) —
 * and only for a 200: an error from such a route is not cached either. A
 * route cannot loosen this by setting its own Cache-Control: the hook
 * overwrites it, so a handler that returns a secret can never be cached by
 * mistake, and a new route is covered without anyone remembering to.
 *
 * **Challenges.** Every 401 names the schemes that would work
 * (RFC 9110 §11.6.1 requires a `WWW-Authenticate` on a 401): a `Bearer`
 * challenge (RFC 6750 §3) and a `DPoP` challenge with the proof algorithms
 * custos accepts (RFC 9449 §7.1), one header line each. When the request
 * presented a token to a route that needs one, the challenge of the scheme it
 * used carries `error="invalid_token"`; without any credential there is no
 * error code, as RFC 6750 §3.1 asks. Nothing more (which check failed) is said.
 *
 * **Content.** Every response says `X-Content-Type-Options: nosniff` (a JSON
 * body naming attacker-chosen paths is never sniffed into HTML or script),
 * `Referrer-Policy: no-referrer`, and a Content-Security-Policy: the
 * console's for its pages and assets (`config.console`, see
 * {@link CONSOLE_CSP}), the API's — nothing may load or run — for the rest.
 */
export function registerResponseHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const publicCache = request.routeOptions.config?.publicCache;
    if (publicCache && reply.statusCode === 200) {
      reply.header('cache-control', `public, max-age=${publicCache.maxAgeSec}`);
      reply.removeHeader('pragma');
    } else {
      reply.header('cache-control', 'no-store');
      reply.header('pragma', 'no-cache');
    }
    if (reply.statusCode === 401) reply.header('www-authenticate', challenges(request));
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('content-security-policy', request.routeOptions.config?.console ? CONSOLE_CSP : API_CSP);
    return payload;
  });
}

function challenges(request: FastifyRequest): string[] {
  let scheme: CredentialScheme | 'ambiguous' | undefined;
  try {
    scheme = requestCredential(request)?.scheme;
  } catch {
    scheme = 'ambiguous';
  }
  // A public route (a login) did not look at the Authorization header: its
  // 401 is about the body's credential, so no header token is called invalid.
  if (request.routeOptions.config?.access?.kind === 'public') scheme = undefined;
  const bearerError =
    scheme === 'ambiguous' ? ', error="invalid_request"' : scheme && scheme !== 'dpop' ? ', error="invalid_token"' : '';
  const dpopError = scheme === 'dpop' ? ', error="invalid_token"' : '';
  return [`Bearer realm="custos"${bearerError}`, `DPoP realm="custos"${dpopError}, algs="${DPOP_CHALLENGE_ALGS}"`];
}
