import type { CustosNode } from '@custos/core';
import type { FastifyInstance } from 'fastify';

/** `/.well-known/*`: discovery for downstream services that verify task tokens offline. */
export async function wellKnownRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.get('/.well-known/jwks.json', {
    // Public keys, fetched and cached by every verifier: public and, like
    // health, not audited (it serves nothing secret and changes nothing).
    config: { access: { kind: 'public' }, unaudited: true },
    schema: { tags: ['oauth'], summary: 'Public keys of task tokens (JWKS)' },
    handler: async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=60');
      return node.services().taskKeys.jwks();
    },
  });

  app.get('/.well-known/oauth-authorization-server', {
    config: { access: { kind: 'public' }, unaudited: true },
    schema: { tags: ['oauth'], summary: 'RFC 8414 authorization server metadata' },
    handler: async () => {
      const issuer = node.services().issuer;
      return {
        issuer,
        token_endpoint: `${issuer}/v1/oauth/token`,
        introspection_endpoint: `${issuer}/v1/oauth/introspect`,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
        token_endpoint_auth_methods_supported: ['none'],
        introspection_endpoint_auth_methods_supported: ['bearer'],
        dpop_signing_alg_values_supported: ['EdDSA', 'ES256', 'RS256'],
        response_types_supported: [],
        scopes_supported: ['read', 'write', 'list', 'delete', 'issue', 'delegate', 'rotate', 'revoke'],
      };
    },
  });
}
