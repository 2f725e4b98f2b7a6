import { type CustosNode, DEFAULT_DPOP_ALGORITHMS } from '@custos/core';
import type { FastifyInstance } from 'fastify';

/** Cached by verifiers for a minute (key rotation pre-publishes for at least that long: docs/task-tokens.md). */
const DISCOVERY_MAX_AGE_SEC = 60;

/** `/.well-known/*`: discovery for downstream services that verify task tokens offline. */
export async function wellKnownRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.get('/.well-known/jwks.json', {
    // Public keys, fetched and cached by every verifier: public and, like
    // health, not audited (it serves nothing secret and changes nothing).
    config: { access: { kind: 'public' }, unaudited: true, publicCache: { maxAgeSec: DISCOVERY_MAX_AGE_SEC } },
    schema: { tags: ['oauth'], summary: 'Public keys of task tokens (JWKS)' },
    handler: async () => node.services().taskKeys.jwks(),
  });

  app.get('/.well-known/oauth-authorization-server', {
    config: { access: { kind: 'public' }, unaudited: true, publicCache: { maxAgeSec: DISCOVERY_MAX_AGE_SEC } },
    schema: { tags: ['oauth'], summary: 'RFC 8414 authorization server metadata' },
    handler: async () => {
      const issuer = node.services().issuer;
      return {
        issuer,
        token_endpoint: `${issuer}/v1/oauth/token`,
        introspection_endpoint: `${issuer}/v1/oauth/introspect`,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
        // The exchange takes no client authentication: the subject token is the credential.
        token_endpoint_auth_methods_supported: ['none'],
        // The introspection caller presents its own custos token. RFC 8414 §2
        // lets this list name access token types from the IANA "OAuth Access
        // Token Types" registry for exactly that case; `Bearer` (RFC 6750) and
        // `DPoP` (RFC 9449) are their registered names.
        introspection_endpoint_auth_methods_supported: ['Bearer', 'DPoP'],
        // The algorithms the DPoP proof verifier accepts, from the verifier itself.
        dpop_signing_alg_values_supported: [...DEFAULT_DPOP_ALGORITHMS],
        // No authorization endpoint, so no response types (the member is required).
        response_types_supported: [],
        // No `scopes_supported`: a custos scope is a list of `ACTION:PATTERN`
        // entries (`read:kv/team/*`), an open set no list of values can name;
        // listing the bare actions would advertise values the exchange refuses.
      };
    },
  });
}
