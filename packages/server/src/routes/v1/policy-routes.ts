import { type CustosNode, POLICY_TEXT_LIMITS, principalName } from '@custos/core';
import type { FastifyInstance } from 'fastify';
import { nameParams, resourceByName } from './route-params.js';

const policyResource = resourceByName('sys/policies/');

/** `/v1/policies/*`: named Cedar policy documents. */
export async function policyRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const policies = () => node.services().policies;

  app.get('/policies', {
    config: { access: { kind: 'policy', action: 'list', resource: () => 'sys/policies/' } },
    schema: { tags: ['policies'], summary: 'List policy names' },
    handler: async () => ({ policies: await policies().list() }),
  });

  app.get<{ Params: { name: string } }>('/policies/:name', {
    config: { access: { kind: 'policy', action: 'read', resource: policyResource } },
    schema: { tags: ['policies'], summary: 'Read a policy', params: nameParams },
    handler: async (request) => policies().read(request.params.name),
  });

  app.put<{ Params: { name: string }; Body: { policy: string } }>('/policies/:name', {
    config: { access: { kind: 'policy', action: 'write', resource: policyResource, operatorOnly: true } },
    schema: {
      tags: ['policies'],
      summary: 'Create or replace a policy (Cedar text; parsed and validated on write)',
      params: nameParams,
      body: {
        type: 'object',
        // A first cut in characters (never more than bytes); the engine then
        // checks the bytes, statements and nesting before Cedar sees the text.
        properties: { policy: { type: 'string', minLength: 1, maxLength: POLICY_TEXT_LIMITS.maxBytes } },
        required: ['policy'],
        additionalProperties: false,
      },
    },
    handler: async (request) =>
      policies().write(
        request.params.name,
        request.body.policy,
        request.auth ? principalName(request.auth) : 'unknown',
      ),
  });

  app.delete<{ Params: { name: string } }>('/policies/:name', {
    config: { access: { kind: 'policy', action: 'delete', resource: policyResource, operatorOnly: true } },
    schema: { tags: ['policies'], summary: 'Delete a policy', params: nameParams },
    handler: async (request, reply) => {
      await policies().delete(request.params.name);
      return reply.code(204).send();
    },
  });
}
