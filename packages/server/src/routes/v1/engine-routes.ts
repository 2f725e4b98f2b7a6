import { CustosError, type CustosNode, type EngineRoleInput, parseDuration } from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeEngineRoleWrite } from '../../engine-role-access.js';

type EngineRequest = FastifyRequest<{ Params: { name: string; role?: string } }>;
const NAME = '^[a-z0-9][a-z0-9_-]{0,62}$';
const engineResource = (request: FastifyRequest) => `sys/engines/${(request as EngineRequest).params.name}`;
const roleResource = (request: FastifyRequest) => {
  const { name, role } = (request as EngineRequest).params;
  return `sys/engines/${name}/roles/${role ?? ''}`;
};
const nameParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: NAME } },
  required: ['name'],
} as const;
const roleParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: NAME }, role: { type: 'string', pattern: NAME } },
  required: ['name', 'role'],
} as const;
const statements = { type: 'array', items: { type: 'string', minLength: 1, maxLength: 4096 }, maxItems: 32 } as const;
/** Static users a database rotator may change (never the engine's admin: the service refuses it). */
const rotatableUsers = {
  type: 'array',
  items: { type: 'string', minLength: 1, maxLength: 128 },
  maxItems: 256,
} as const;

interface RoleBody {
  creation_statements?: string[];
  revocation_statements?: string[];
  default_ttl?: string;
  max_ttl?: string;
  /** aws-sts roles. */
  role_arn?: string;
  session_policy?: string;
}

/**
 * `/v1/engines`: database engines and their roles (operator configuration).
 * The engine's admin URL goes in and never comes out.
 */
export async function engineRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const engines = () => node.services().engines;

  app.get('/engines', {
    config: { access: { kind: 'policy', action: 'list', resource: () => 'sys/engines/' } },
    schema: { tags: ['engines'], summary: 'List engines' },
    handler: async () => ({ keys: await engines().list() }),
  });

  app.put<{
    Params: { name: string };
    Body: {
      type: string;
      url?: string;
      rotatable_users?: string[];
      tls_ca?: string;
      region?: string;
      sts_endpoint?: string;
      iam_endpoint?: string;
    };
  }>('/engines/:name', {
    config: { access: { kind: 'policy', action: 'write', resource: engineResource, operatorOnly: true } },
    schema: {
      tags: ['engines'],
      summary: 'Add or replace an engine (its connection is verified first; the URL is never returned)',
      params: nameParams,
      body: {
        type: 'object',
        properties: {
          type: { type: 'string', enum: ['postgres', 'mysql', 'aws-sts'] },
          // Query parameters: sslmode, connect_timeout, application_name only (engine-url.ts).
          url: { type: 'string', minLength: 1, maxLength: 2048 },
          rotatable_users: rotatableUsers,
          // CA certificates (PEM) for TLS to the database: inline, never a path.
          tls_ca: { type: 'string', minLength: 1, maxLength: 65_536 },
          // aws-sts: no URL and no credential (the SDK default chain is custos's AWS principal).
          region: { type: 'string', minLength: 1, maxLength: 32 },
          sts_endpoint: { type: 'string', minLength: 1, maxLength: 2048 },
          iam_endpoint: { type: 'string', minLength: 1, maxLength: 2048 },
        },
        required: ['type'],
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const { region, sts_endpoint, iam_endpoint, ...rest } = request.body;
      if (rest.type !== 'aws-sts') return engines().write(request.params.name, rest);
      if (rest.url || rest.tls_ca || rest.rotatable_users) {
        throw new CustosError(
          'CUSTOS_ERR_VALIDATION',
          'An aws-sts engine takes region, sts_endpoint and iam_endpoint.',
        );
      }
      return engines().write(request.params.name, {
        type: 'aws-sts',
        aws: {
          region: region ?? '',
          ...(sts_endpoint ? { sts_endpoint } : {}),
          ...(iam_endpoint ? { iam_endpoint } : {}),
        },
      });
    },
  });

  app.put<{ Params: { name: string }; Body: { users: string[] } }>('/engines/:name/rotatable-users', {
    config: { access: { kind: 'policy', action: 'write', resource: engineResource, operatorOnly: true } },
    schema: {
      tags: ['engines'],
      summary: 'Set the static users a database rotator may change (never the engine’s admin account)',
      params: nameParams,
      body: {
        type: 'object',
        properties: { users: rotatableUsers },
        required: ['users'],
        additionalProperties: false,
      },
    },
    handler: async (request) => engines().setRotatableUsers(request.params.name, request.body.users),
  });

  app.get<{ Params: { name: string } }>('/engines/:name', {
    config: { access: { kind: 'policy', action: 'read', resource: engineResource } },
    schema: { tags: ['engines'], summary: 'Read an engine (never its URL)', params: nameParams },
    handler: async (request) => engines().read(request.params.name),
  });

  app.delete<{ Params: { name: string } }>('/engines/:name', {
    config: { access: { kind: 'policy', action: 'delete', resource: engineResource, operatorOnly: true } },
    schema: { tags: ['engines'], summary: 'Delete an engine and its roles', params: nameParams },
    handler: async (request, reply) => {
      await engines().delete(request.params.name);
      return reply.code(204).send();
    },
  });

  app.post<{ Params: { name: string } }>('/engines/:name/rotate-root', {
    config: { access: { kind: 'policy', action: 'rotate', resource: engineResource, operatorOnly: true } },
    schema: { tags: ['engines'], summary: 'Replace the admin password custos connects with', params: nameParams },
    handler: async (request) => engines().rotateRoot(request.params.name),
  });

  app.get<{ Params: { name: string } }>('/engines/:name/roles', {
    config: { access: { kind: 'policy', action: 'list', resource: roleResource } },
    schema: { tags: ['engines'], summary: 'List the roles of an engine', params: nameParams },
    handler: async (request) => ({ keys: await engines().listRoles(request.params.name) }),
  });

  app.put<{ Params: { name: string; role: string }; Body: RoleBody }>('/engines/:name/roles/:role', {
    config: { access: { kind: 'policy', action: 'write', resource: roleResource, operatorOnly: true } },
    schema: {
      tags: ['engines'],
      summary:
        'Write a role (statement text, which runs as the engine’s admin, also needs write on sys/engines/<name>; statements are checked against the database first)',
      params: roleParams,
      body: {
        type: 'object',
        properties: {
          creation_statements: statements,
          revocation_statements: statements,
          default_ttl: { type: 'string', maxLength: 32 },
          max_ttl: { type: 'string', maxLength: 32 },
          role_arn: { type: 'string', minLength: 1, maxLength: 2048 },
          // An IAM policy document (JSON text); AWS limits session policies to 2048 characters.
          session_policy: { type: 'string', minLength: 1, maxLength: 16_384 },
        },
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const { body } = request;
      // Statement text runs as the engine's admin: it needs the engine's own grant (engine-role-access.ts).
      authorizeEngineRoleWrite(request, node, request.params.name, body);
      const input: EngineRoleInput = {
        ...(body.creation_statements ? { creation_statements: body.creation_statements } : {}),
        ...(body.revocation_statements ? { revocation_statements: body.revocation_statements } : {}),
        ...(body.default_ttl ? { default_ttl_ms: parseDuration(body.default_ttl) } : {}),
        ...(body.max_ttl ? { max_ttl_ms: parseDuration(body.max_ttl) } : {}),
        ...(body.role_arn
          ? {
              aws: {
                role_arn: body.role_arn,
                ...(body.session_policy ? { session_policy: body.session_policy } : {}),
              },
            }
          : {}),
      };
      return engines().writeRole(request.params.name, request.params.role, input);
    },
  });

  app.get<{ Params: { name: string; role: string } }>('/engines/:name/roles/:role', {
    config: { access: { kind: 'policy', action: 'read', resource: roleResource } },
    schema: { tags: ['engines'], summary: 'Read a role', params: roleParams },
    handler: async (request) => engines().readRole(request.params.name, request.params.role),
  });

  app.delete<{ Params: { name: string; role: string } }>('/engines/:name/roles/:role', {
    config: { access: { kind: 'policy', action: 'delete', resource: roleResource, operatorOnly: true } },
    schema: { tags: ['engines'], summary: 'Delete a role', params: roleParams },
    handler: async (request, reply) => {
      await engines().deleteRole(request.params.name, request.params.role);
      return reply.code(204).send();
    },
  });
}
