import { type CustosNode, PermissionDeniedError, type Principal, parseDuration, type TokenEntry } from '@custos/core';
import type { FastifyInstance } from 'fastify';

const tokenView = (entry: TokenEntry) => ({
  accessor: entry.accessor,
  policies: entry.policies,
  root: entry.root,
  display_name: entry.display_name,
  created_time: entry.created_time,
  expire_time: entry.expires_at === null ? null : new Date(entry.expires_at).toISOString(),
});
const authLimit = { max: 60, timeWindow: '1 minute' };
const operatorToken = (principal: Principal | null): TokenEntry => {
  if (principal?.kind !== 'operator') throw new PermissionDeniedError();
  return principal.token;
};

/** `/v1/auth/token/*`: operator tokens for humans and services. */
export async function tokenRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const tokens = () => node.services().tokens;

  app.post<{ Body: { policies: string[]; ttl: string; display_name?: string } }>('/auth/token/create', {
    config: {
      access: { kind: 'policy', action: 'write', resource: () => 'sys/tokens', operatorOnly: true },
      rateLimit: authLimit,
    },
    schema: {
      tags: ['auth'],
      summary: 'Create a token holding some of the caller’s policies',
      body: {
        type: 'object',
        properties: {
          policies: { type: 'array', items: { type: 'string', maxLength: 64 }, minItems: 1, maxItems: 64 },
          ttl: { type: 'string', maxLength: 32 },
          display_name: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9 _.@-]*$' },
        },
        required: ['policies', 'ttl'],
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      // Tasks get narrower tasks by delegation, never operator tokens.
      if (request.auth?.kind !== 'operator') throw new PermissionDeniedError();
      const issued = await tokens().create(
        {
          policies: request.body.policies,
          ttlMs: parseDuration(request.body.ttl),
          ...(request.body.display_name ? { displayName: request.body.display_name } : {}),
        },
        request.auth.token,
      );
      return { token: issued.token, ...tokenView(issued.entry) };
    },
  });

  app.get('/auth/token/self', {
    config: { access: { kind: 'operator-self' }, rateLimit: authLimit },
    schema: { tags: ['auth'], summary: 'Describe the calling token' },
    handler: async (request) => tokenView(operatorToken(request.auth)),
  });

  app.post('/auth/token/revoke-self', {
    config: { access: { kind: 'operator-self' }, rateLimit: authLimit },
    schema: { tags: ['auth'], summary: 'Revoke the calling token' },
    handler: async (request, reply) => {
      await tokens().revokeAccessor(operatorToken(request.auth).accessor);
      return reply.code(204).send();
    },
  });

  app.get<{ Params: { accessor: string } }>('/auth/token/accessors/:accessor', {
    config: { access: { kind: 'policy', action: 'read', resource: () => 'sys/tokens' }, rateLimit: authLimit },
    schema: { tags: ['auth'], summary: 'Look a token up by accessor' },
    handler: async (request) => tokenView(await tokens().lookupAccessor(request.params.accessor)),
  });

  app.post<{ Body: { accessor: string } }>('/auth/token/revoke-accessor', {
    config: { access: { kind: 'policy', action: 'revoke', resource: () => 'sys/tokens' }, rateLimit: authLimit },
    schema: {
      tags: ['auth'],
      summary: 'Revoke a token by accessor',
      body: {
        type: 'object',
        properties: { accessor: { type: 'string', maxLength: 64 } },
        required: ['accessor'],
        additionalProperties: false,
      },
    },
    handler: async (request, reply) => {
      await tokens().revokeAccessor(request.body.accessor);
      return reply.code(204).send();
    },
  });
}
