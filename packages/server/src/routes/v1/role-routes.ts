import {
  type CustosNode,
  formatActiveHours,
  PermissionDeniedError,
  parseActiveHours,
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
  /** `Mon-Fri 07:00-19:00 Europe/Berlin, …`, or `none` to clear. */
  active_hours?: string;
  /** Just-in-time: the scope its tasks may request (`''` clears), the approver policies, the approvals needed. */
  request_scope?: string;
  approvers?: string[];
  approvals?: number;
}

/** `{ identity }`: one identity under the role; none: the role itself. */
interface SuspensionBody {
  identity?: string;
}

const suspensionBody = {
  type: 'object',
  properties: { identity: { type: 'string', minLength: 1, maxLength: 512 } },
  additionalProperties: false,
} as const;

/** The API view of a role: durations as milliseconds and as text, active hours as text. */
export const roleView = (role: Role) => {
  const { active_hours, ...rest } = role;
  return {
    ...rest,
    max_ttl: `${Math.round(role.max_ttl_ms / 1000)}s`,
    default_ttl: `${Math.round(role.default_ttl_ms / 1000)}s`,
    ...(active_hours && active_hours.length > 0 ? { active_hours: formatActiveHours(active_hours) } : {}),
  };
};

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
          auth: { type: 'array', items: { enum: ['bootstrap', 'jwt', 'cert', 'aws'] }, minItems: 1, maxItems: 4 },
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
          active_hours: { type: 'string', maxLength: 2048 },
          request_scope: { type: 'string', maxLength: 4096 },
          approvers: stringList,
          approvals: { type: 'integer', minimum: 1, maximum: 10 },
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
        ...(b.request_scope !== undefined ? { request_scope: b.request_scope } : {}),
        ...(b.approvers ? { approvers: b.approvers } : {}),
        ...(b.approvals !== undefined ? { approvals: b.approvals } : {}),
        // Parsed before anything is written: a bad window is refused whole (CUSTOS_ERR_ACTIVE_HOURS_INVALID).
        ...(b.active_hours !== undefined
          ? { active_hours: b.active_hours.trim() === 'none' ? [] : parseActiveHours(b.active_hours) }
          : {}),
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

  // Suspension: the reversible quarantine (see assertRoleAdmits). Operator
  // tokens only — a task can neither suspend nor resume, least of all its own
  // role. Suspending needs `write` on the role (whoever may rewrite it may
  // also stop it); resuming needs `admin`: lifting a quarantine custos or an
  // operator imposed is worth more than editing the role, as acknowledging
  // an alert is worth more than reading it.
  app.post<{ Params: { name: string }; Body: SuspensionBody }>('/roles/:name/suspend', {
    config: { access: { kind: 'policy', action: 'write', resource: roleResource, operatorOnly: true } },
    schema: {
      tags: ['roles'],
      summary: 'Suspend a role (or one identity under it): logins, starts, delegations and its live tasks are refused',
      params: nameParams,
      body: suspensionBody,
    },
    handler: async (request) => {
      const identity = request.body?.identity;
      // The audit event names whom the suspension is for, not only the role.
      request.auditIdentity = identity ?? null;
      const { role, changed } = await roles().suspend(request.params.name, identity !== undefined ? { identity } : {}, {
        by: principalName(request.auth!),
        at: new Date().toISOString(),
      });
      return { changed, role: roleView(role) };
    },
  });

  app.post<{ Params: { name: string }; Body: SuspensionBody }>('/roles/:name/resume', {
    config: { access: { kind: 'policy', action: 'admin', resource: roleResource, operatorOnly: true } },
    schema: {
      tags: ['roles'],
      summary: 'Lift the suspension of a role (or of one identity under it)',
      params: nameParams,
      body: suspensionBody,
    },
    handler: async (request) => {
      const identity = request.body?.identity;
      request.auditIdentity = identity ?? null;
      const { role, changed } = await roles().resume(request.params.name, identity !== undefined ? { identity } : {});
      return { changed, role: roleView(role) };
    },
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
