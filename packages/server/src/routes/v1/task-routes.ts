import {
  CustosError,
  type CustosNode,
  type IssuedTask,
  parseDuration,
  principalName,
  type Role,
  type TaskState,
} from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeDelegation, authorizeTaskAccess, callingTask } from '../../task-access.js';
import { roleResource } from './route-params.js';

const idParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^tsk_[A-Za-z0-9_-]{22}$' } },
  required: ['id'],
} as const;
const accessorParams = {
  type: 'object',
  properties: { accessor: { type: 'string', pattern: '^tac_[A-Za-z0-9_-]{22}$' } },
  required: ['accessor'],
} as const;
const labelsSchema = {
  type: 'object',
  additionalProperties: { type: 'string', maxLength: 256 },
  maxProperties: 32,
} as const;
const jktSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } as const;

export interface StartBody {
  ttl?: string;
  scope?: string;
  labels?: Record<string, string>;
  /** RFC 7638 thumbprint of the agent's DPoP key: the task's tokens are bound to it. */
  dpop_jkt?: string;
}

export const startBodySchema = {
  type: 'object',
  properties: {
    ttl: { type: 'string', maxLength: 32 },
    scope: { type: 'string', maxLength: 4096 },
    labels: labelsSchema,
    dpop_jkt: jktSchema,
  },
  additionalProperties: false,
} as const;

/**
 * What login and start answer: the token (once), its id and accessor. The
 * request's audit event names the task.
 */
export const issuedView = (request: FastifyRequest, issued: IssuedTask) => {
  request.auditIssuedTask = issued.task.id;
  return {
    token: issued.token,
    token_type: issued.task.jkt ? 'DPoP' : 'Bearer',
    task_id: issued.task.id,
    accessor: issued.task.accessor,
    expire_time: issued.task.expire_time,
    scope: issued.task.scope,
    task: issued.task,
  };
};

/** Starts a root task of `role` for `sub`: shared by operator start and every login. */
export async function startTask(
  node: CustosNode,
  role: Role,
  sub: string,
  via: string,
  body: StartBody | undefined,
): Promise<IssuedTask> {
  if (role.require_dpop && !body?.dpop_jkt) throw new CustosError('CUSTOS_ERR_DPOP_REQUIRED');
  return node.services().tasks.start({
    role,
    sub,
    via,
    ...(body?.ttl ? { ttlMs: parseDuration(body.ttl) } : {}),
    ...(body?.scope ? { scope: body.scope } : {}),
    ...(body?.labels ? { labels: body.labels } : {}),
    ...(body?.dpop_jkt ? { jkt: body.dpop_jkt } : {}),
  });
}

/** `/v1/tasks/*` and `/v1/roles/:name/tasks`: tasks, their trees and accessors. */
export async function taskRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const tasks = () => node.services().tasks;

  app.post<{ Params: { name: string }; Body: StartBody }>('/roles/:name/tasks', {
    config: { access: { kind: 'policy', action: 'issue', resource: roleResource, operatorOnly: true } },
    schema: { tags: ['tasks'], summary: 'Start a root task of a role (operator)', body: startBodySchema },
    handler: async (request) => {
      const role = await node.services().roles.read(request.params.name);
      const sub = request.auth?.kind === 'operator' ? `token:${request.auth.token.accessor}` : 'unknown';
      return issuedView(request, await startTask(node, role, sub, 'operator', request.body));
    },
  });

  app.post<{ Body: { scope?: string; ttl?: string; labels?: Record<string, string>; dpop_jkt?: string } }>(
    '/tasks/delegate',
    {
      config: { access: { kind: 'self' } },
      schema: {
        tags: ['tasks'],
        summary: 'Mint a narrower child task for a sub-agent (JSON form of the RFC 8693 token exchange)',
        body: startBodySchema,
      },
      handler: async (request) => {
        const parent = callingTask(request);
        authorizeDelegation(request, node, parent);
        const b = request.body ?? {};
        return issuedView(
          request,
          await tasks().delegate(
            parent,
            {
              ...(b.scope ? { scope: b.scope } : {}),
              ...(b.ttl ? { ttlMs: parseDuration(b.ttl) } : {}),
              ...(b.labels ? { labels: b.labels } : {}),
              ...(b.dpop_jkt ? { jkt: b.dpop_jkt } : {}),
            },
            request.auth?.kind === 'task' ? request.auth.role : undefined,
          ),
        );
      },
    },
  );

  app.get<{ Querystring: { role?: string; state?: TaskState; limit?: string } }>('/tasks', {
    config: { access: { kind: 'policy', action: 'list', resource: () => 'sys/tasks' } },
    schema: {
      tags: ['tasks'],
      summary: 'List tasks',
      querystring: {
        type: 'object',
        properties: {
          role: { type: 'string', maxLength: 64 },
          state: { enum: ['active', 'ended', 'revoked', 'expired'] },
          limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
        },
        additionalProperties: false,
      },
    },
    handler: async (request) => ({
      tasks: await tasks().list({
        ...(request.query.role ? { role: request.query.role } : {}),
        ...(request.query.state ? { state: request.query.state } : {}),
        ...(request.query.limit ? { limit: Number(request.query.limit) } : {}),
      }),
    }),
  });

  app.get<{ Params: { id: string } }>('/tasks/:id', {
    config: { access: { kind: 'self' } },
    schema: { tags: ['tasks'], summary: 'Show a task', params: idParams },
    handler: async (request) => {
      authorizeTaskAccess(request, node, 'read', await tasks().record(request.params.id));
      return tasks().show(request.params.id);
    },
  });

  app.get<{ Params: { id: string } }>('/tasks/:id/tree', {
    config: { access: { kind: 'self' } },
    schema: { tags: ['tasks'], summary: 'The task and every descendant', params: idParams },
    handler: async (request) => {
      authorizeTaskAccess(request, node, 'read', await tasks().record(request.params.id));
      return { tasks: await tasks().tree(request.params.id) };
    },
  });

  app.post<{ Params: { id: string } }>('/tasks/:id/revoke', {
    config: { access: { kind: 'self' } },
    schema: { tags: ['tasks'], summary: 'Revoke a task and its whole subtree', params: idParams },
    handler: async (request) => {
      authorizeTaskAccess(request, node, 'revoke', await tasks().record(request.params.id));
      return tasks().revoke(request.params.id, principalName(request.auth!));
    },
  });

  app.post<{ Params: { id: string } }>('/tasks/:id/end', {
    config: { access: { kind: 'self' } },
    schema: { tags: ['tasks'], summary: 'End a task (its work is done); its subtree ends with it', params: idParams },
    handler: async (request) => {
      authorizeTaskAccess(request, node, 'revoke', await tasks().record(request.params.id));
      return tasks().end(request.params.id, principalName(request.auth!));
    },
  });

  app.post('/tasks/self/token', {
    config: { access: { kind: 'self' } },
    schema: { tags: ['tasks'], summary: 'A fresh token for the calling task (after its lifetime was extended)' },
    handler: async (request) => issuedView(request, await tasks().reissue(callingTask(request).task_id)),
  });

  app.get<{ Params: { accessor: string } }>('/tasks/accessors/:accessor', {
    config: { access: { kind: 'policy', action: 'read', resource: () => 'sys/tasks' } },
    schema: { tags: ['tasks'], summary: 'Look a task up by accessor (no token needed)', params: accessorParams },
    handler: async (request) => tasks().findByAccessor(request.params.accessor),
  });

  app.post<{ Params: { accessor: string }; Body: { ttl: string } }>('/tasks/accessors/:accessor/extend', {
    config: { access: { kind: 'policy', action: 'write', resource: () => 'sys/tasks', operatorOnly: true } },
    schema: {
      tags: ['tasks'],
      summary: 'Extend a task, within its role’s max TTL and its parent’s expiry',
      params: accessorParams,
      body: {
        type: 'object',
        properties: { ttl: { type: 'string', maxLength: 32 } },
        required: ['ttl'],
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const task = await tasks().findByAccessor(request.params.accessor);
      return tasks().extend(task.id, parseDuration(request.body.ttl));
    },
  });

  app.post<{ Params: { accessor: string } }>('/tasks/accessors/:accessor/revoke', {
    config: { access: { kind: 'policy', action: 'revoke', resource: () => 'sys/tasks' } },
    schema: { tags: ['tasks'], summary: 'Revoke a task and its subtree by accessor', params: accessorParams },
    handler: async (request) => {
      const task = await tasks().findByAccessor(request.params.accessor);
      return tasks().revoke(task.id, principalName(request.auth!));
    },
  });
}
