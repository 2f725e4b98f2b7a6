import { type CustosNode, type ResourceInput, resourceConfigResource } from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';

type ResourceRequest = FastifyRequest<{ Params: { name: string } }>;
const NAME = '^[a-z0-9][a-z0-9_-]{0,62}$';
const resource = (request: FastifyRequest) => resourceConfigResource((request as ResourceRequest).params.name);
const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: NAME } },
  required: ['name'],
} as const;
const resourceView = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    url: { type: 'string', description: 'The canonical resource indicator: the `aud` of the tokens minted for it' },
    scopes: { type: 'array', items: { type: 'string' } },
    description: { type: 'string' },
    created_time: { type: 'string' },
    updated_time: { type: 'string' },
  },
} as const;

/**
 * `/v1/resources`: APIs and MCP servers registered as RFC 8707 resources
 * (operator configuration). Managing one is an action on
 * `sys/resources/<name>`, writes by operators only (as upstreams: a task
 * never configures what other tasks' tokens may be minted for). *Using* one
 * — exchanging a task token for a token whose `aud` is its URL — is `use` on
 * `resource/<name>`, checked by the token exchange.
 *
 * Unlike an upstream, a resource needs no further permission to register:
 * custos sends nothing to it and no secret is bound to it. What a resource
 * allows is a token *narrower* than its parent (refused by custos itself,
 * scope within the parent's), so registering one grants no task more power.
 */
export async function resourceRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const resources = () => node.services().resources;

  app.get('/resources', {
    config: { access: { kind: 'policy', action: 'list', resource: () => 'sys/resources/' } },
    schema: {
      tags: ['resources'],
      summary: 'List registered resources',
      response: {
        200: { type: 'object', properties: { keys: { type: 'array', items: { type: 'string' } } } },
      },
    },
    handler: async () => ({ keys: await resources().list() }),
  });

  app.put<{ Params: { name: string }; Body: ResourceInput }>('/resources/:name', {
    config: { access: { kind: 'policy', action: 'write', resource, operatorOnly: true } },
    schema: {
      tags: ['resources'],
      summary: 'Register or replace a resource (RFC 8707 resource indicator for the token exchange)',
      description:
        'Its URL, scopes and description are public: GET /.well-known/oauth-protected-resource/{name} serves them ' +
        'as RFC 9728 metadata.',
      params: nameParams,
      body: {
        type: 'object',
        properties: {
          url: { type: 'string', minLength: 1, maxLength: 2048 },
          scopes: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 1100 }, maxItems: 64 },
          description: { type: 'string', minLength: 1, maxLength: 256 },
        },
        required: ['url'],
        additionalProperties: false,
      },
      response: { 200: resourceView },
    },
    handler: async (request) => resources().write(request.params.name, request.body),
  });

  app.get<{ Params: { name: string } }>('/resources/:name', {
    config: { access: { kind: 'policy', action: 'read', resource } },
    schema: {
      tags: ['resources'],
      summary: 'Read a registered resource',
      params: nameParams,
      response: { 200: resourceView },
    },
    handler: async (request) => resources().read(request.params.name),
  });

  app.delete<{ Params: { name: string } }>('/resources/:name', {
    config: { access: { kind: 'policy', action: 'delete', resource, operatorOnly: true } },
    schema: {
      tags: ['resources'],
      summary: 'Delete a resource (exchanges for it are refused from now on; tokens already minted live until exp)',
      params: nameParams,
    },
    handler: async (request, reply) => {
      await resources().delete(request.params.name);
      return reply.code(204).send();
    },
  });
}
