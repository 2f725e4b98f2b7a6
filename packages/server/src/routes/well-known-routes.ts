import { type CustosNode, DEFAULT_DPOP_ALGORITHMS, isResourceName } from '@custos/core';
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
        // No `protected_resources` (RFC 9728 §4) either: it would list every
        // registered resource to anyone; each resource's own metadata names
        // custos as its authorization server instead.
      };
    },
  });

  app.get<{ Params: { name: string } }>('/.well-known/oauth-protected-resource/:name', {
    // RFC 9728 metadata of one registered resource, public by nature: a
    // client that met the resource reads it to learn where to get a token.
    // It says what the resource server itself publishes (its URL, custos as
    // its authorization server, its scopes and the description an operator
    // wrote for this purpose) — nothing about tasks, secrets or policies.
    // An unknown or malformed name is answered by the server's own 404
    // handler, byte for byte the answer to any missing page, so nothing but
    // a correctly guessed name reveals a resource, and there is no listing.
    // Not audited, like the JWKS: it changes nothing and serves nothing secret.
    config: { access: { kind: 'public' }, unaudited: true, publicCache: { maxAgeSec: DISCOVERY_MAX_AGE_SEC } },
    schema: {
      tags: ['oauth'],
      summary: 'RFC 9728 protected resource metadata of a registered resource',
      description:
        'For a resource registered with `custos resource add NAME --url …`. A resource server points clients here ' +
        'with `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 9728 §5.1), or serves the same document at ' +
        'its own `/.well-known/oauth-protected-resource` (the SDK’s `protectedResourceMetadata`). Unknown names: ' +
        'the same 404 as any missing page.',
      // No pattern or length here: a schema refusal would be a 400, which tells a malformed name from an
      // unknown one; the handler answers both with the 404 of a missing page.
      params: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
      response: {
        200: {
          type: 'object',
          properties: {
            resource: { type: 'string' },
            authorization_servers: { type: 'array', items: { type: 'string' } },
            scopes_supported: { type: 'array', items: { type: 'string' } },
            bearer_methods_supported: { type: 'array', items: { type: 'string' } },
            resource_name: { type: 'string' },
          },
          required: ['resource', 'authorization_servers', 'bearer_methods_supported'],
        },
      },
    },
    handler: async (request, reply) => {
      const services = node.services();
      const record = isResourceName(request.params.name)
        ? await services.resources.find(request.params.name)
        : undefined;
      if (!record) return reply.callNotFound();
      return {
        resource: record.url,
        authorization_servers: [services.issuer],
        // Only when registered: RFC 9728 makes it optional, and an empty list
        // would claim the resource takes no scope at all.
        ...(record.scopes.length > 0 ? { scopes_supported: [...record.scopes] } : {}),
        // RFC 6750 §2.1 only: a token in a query or a form body ends up in logs.
        bearer_methods_supported: ['header'],
        ...(record.description !== undefined ? { resource_name: record.description } : {}),
      };
    },
  });
}
