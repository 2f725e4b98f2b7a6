import {
  type CustosNode,
  PermissionDeniedError,
  parseDuration,
  principalName,
  type Role,
  type RoleInput,
} from '@custos/core';
import type { FastifyInstance } from 'fastify';
import { nameParams, roleResource } from './route-params.js';
import { labelsSchema } from './task-routes.js';

const stringList = { type: 'array', items: { type: 'string', maxLength: 256 }, maxItems: 64 } as const;

interface RoleBody {
  policies: string[];
  max_ttl?: string;
  default_ttl?: string;
  auth?: Array<'bootstrap' | 'jwt' | 'cert'>;
  bound_claims?: Record<string, string | string[]>;
  bound_cidrs?: string[];
  max_depth?: number;
  require_dpop?: boolean;
  jwt_methods?: string[];
  labels?: Record<string, string>;
  grantable_labels?: string[];
}

/** The API view of a role: durations as milliseconds and as text. */
export const roleView = (role: Role) => ({
  ...role,
  max_ttl: `${Math.round(role.max_ttl_ms / 1000)}s`,
  default_ttl: `${Math.round(role.default_ttl_ms / 1000)}s`,
});

/** `/v1/roles/*`: agent types. */
export async function roleRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const roles = () => node.services().roles;

  app.put<{ Params: { name: string }; Body: RoleBody }>('/roles/:name', {
    config: { access: { kind: 'policy', action: 'write', resource: roleResource, operatorOnly: true } },
    schema: {
      tags: ['roles'],
      summary: 'Create or replace a role (agent type)',
      params: nameParams,
      body: {
        type: 'object',
        properties: {
          policies: stringList,
          max_ttl: { type: 'string', maxLength: 32 },
          default_ttl: { type: 'string', maxLength: 32 },
          auth: { type: 'array', items: { enum: ['bootstrap', 'jwt', 'cert'] }, minItems: 1, maxItems: 3 },
          bound_claims: {
            type: 'object',
            additionalProperties: { anyOf: [{ type: 'string', maxLength: 256 }, stringList] },
            maxProperties: 32,
          },
          bound_cidrs: stringList,
          max_depth: { type: 'integer', minimum: 0, maximum: 16 },
          require_dpop: { type: 'boolean' },
          jwt_methods: stringList,
          labels: labelsSchema,
          grantable_labels: { type: 'array', items: { type: 'string', maxLength: 63 }, maxItems: 32 },
        },
        required: ['policies'],
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const b = request.body;
      // Writing a role hands its policies to every agent that gets in as it:
      // like minting a token, a caller may attach only policies it holds
      // itself (the root token may attach any).
      const principal = request.auth;
      if (principal?.kind === 'operator' && !principal.token.root) {
        if (b.policies.some((p) => !principal.token.policies.includes(p))) throw new PermissionDeniedError();
      }
      const input: RoleInput = {
        policies: b.policies,
        ...(b.max_ttl ? { max_ttl_ms: parseDuration(b.max_ttl) } : {}),
        ...(b.default_ttl ? { default_ttl_ms: parseDuration(b.default_ttl) } : {}),
        ...(b.auth ? { auth: b.auth } : {}),
        ...(b.bound_claims
          ? {
              bound_claims: Object.fromEntries(
                Object.entries(b.bound_claims).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]),
              ),
            }
          : {}),
        ...(b.bound_cidrs ? { bound_cidrs: b.bound_cidrs } : {}),
        ...(b.max_depth !== undefined ? { max_depth: b.max_depth } : {}),
        ...(b.require_dpop !== undefined ? { require_dpop: b.require_dpop } : {}),
        ...(b.jwt_methods ? { jwt_methods: b.jwt_methods } : {}),
        ...(b.labels ? { labels: b.labels } : {}),
        ...(b.grantable_labels ? { grantable_labels: b.grantable_labels } : {}),
      };
      return roleView(await roles().write(request.params.name, input));
    },
  });

  app.get<{ Params: { name: string } }>('/roles/:name', {
    config: { access: { kind: 'policy', action: 'read', resource: roleResource } },
    schema: { tags: ['roles'], summary: 'Read a role', params: nameParams },
    handler: async (request) => roleView(await roles().read(request.params.name)),
  });

  app.get('/roles', {
    config: { access: { kind: 'policy', action: 'list', resource: () => 'sys/roles/' } },
    schema: { tags: ['roles'], summary: 'List roles' },
    handler: async () => ({ roles: await roles().list() }),
  });

  app.delete<{ Params: { name: string } }>('/roles/:name', {
    config: { access: { kind: 'policy', action: 'delete', resource: roleResource, operatorOnly: true } },
    schema: {
      tags: ['roles'],
      summary: 'Delete a role: its tasks end (revoked, with their leases)',
      params: nameParams,
    },
    handler: async (request, reply) => {
      const role = await roles().delete(request.params.name);
      // Its tasks' tokens are refused from now on, on every node (role
      // incarnation); ending them records it and drops their leases now.
      await node.services().tasks.revokeRoleTasks(role, principalName(request.auth!));
      return reply.code(204).send();
    },
  });
}
