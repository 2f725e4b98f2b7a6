import {
  CustosError,
  type CustosNode,
  type IssuedTask,
  operatorLabels,
  PermissionDeniedError,
  parseDuration,
  principalName,
  type Role,
  TASK_LIST_SCAN,
  type TaskPage,
  type TaskState,
  type TaskView,
  ValidationError,
} from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeDelegation, authorizeSubtreeAccess, authorizeTaskAccess, callingTask } from '../../task-access.js';
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
/** A label map in a body (its keys and values are checked again by the service, by origin). */
export const labelsSchema = {
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

/**
 * Where a start's labels come from. At a login the body's labels are the
 * agent's own (`agent.…` only) and `granted` holds the operator labels its
 * credential carries (bootstrap token, JWT claim mapping); at an operator
 * start the body's labels are the operator's.
 */
export type StartLabels = { from: 'login'; granted?: Record<string, string> } | { from: 'operator' };

/** Starts a root task of `role` for `sub`: shared by operator start and every login. */
export async function startTask(
  node: CustosNode,
  role: Role,
  sub: string,
  via: string,
  body: StartBody | undefined,
  labels: StartLabels,
): Promise<IssuedTask> {
  if (role.require_dpop && !body?.dpop_jkt) throw new CustosError('CUSTOS_ERR_DPOP_REQUIRED');
  // An operator start is an operator label source like a role or a bootstrap
  // token: the `agent.` namespace is not its to write. Which keys the role
  // lets be granted, and never against its own, is checked by the task
  // service for every source.
  const granted = labels.from === 'operator' ? operatorLabels(body?.labels) : (labels.granted ?? {});
  return node.services().tasks.start({
    role,
    sub,
    via,
    ...(body?.ttl ? { ttlMs: parseDuration(body.ttl) } : {}),
    ...(body?.scope ? { scope: body.scope } : {}),
    labels: granted,
    ...(labels.from === 'login' && body?.labels ? { agentLabels: body.labels } : {}),
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
      return issuedView(request, await startTask(node, role, sub, 'operator', request.body, { from: 'operator' }));
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
              // New agent labels only: what the parent has, the child keeps (task-labels.ts).
              ...(b.labels ? { labels: b.labels } : {}),
              ...(b.dpop_jkt ? { jkt: b.dpop_jkt } : {}),
            },
            request.auth?.kind === 'task' ? request.auth.role : undefined,
          ),
        );
      },
    },
  );

  app.get<{ Querystring: { role?: string; state?: TaskState; limit?: string; cursor?: string } }>('/tasks', {
    // Decided in the handler: what a caller may see depends on who it is.
    config: { access: { kind: 'self' } },
    schema: {
      tags: ['tasks'],
      summary: 'List the tasks the caller may see (a task: its own subtree), a page at a time',
      description:
        `One page: at most \`limit\` (1–${TASK_LIST_SCAN}, default 100) of the tasks the caller may see — a task, ` +
        'its own subtree; an operator, each task it may read — found among at most ' +
        `${TASK_LIST_SCAN} stored tasks. \`next_cursor\`, when present, continues the listing (a page may be ` +
        'empty while it is there).',
      querystring: {
        type: 'object',
        properties: {
          role: { type: 'string', maxLength: 64 },
          state: { enum: ['active', 'ended', 'revoked', 'expired'] },
          limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
          cursor: { type: 'string', maxLength: 512 },
        },
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const { role, state, limit: limitText, cursor } = request.query;
      const limit = limitText ? Number(limitText) : 100;
      if (limit > TASK_LIST_SCAN) throw new ValidationError(`limit is 1 to ${TASK_LIST_SCAN}.`);
      const principal = request.auth;
      const wanted = (view: TaskView) => (!role || view.role === role) && (!state || view.state === state);
      const page = (listed: TaskPage) => ({
        tasks: listed.tasks,
        ...(listed.cursor ? { next_cursor: listed.cursor } : {}),
      });
      if (principal?.kind === 'task') {
        // A task sees its own subtree, as with show and tree by id.
        request.resourcePath = `sys/tasks/${principal.task.task_id}`;
        request.decision = 'allow';
        return page(
          await tasks().listSubtree(principal.task.task_id, {
            limit,
            filter: wanted,
            ...(cursor !== undefined ? { cursor } : {}),
          }),
        );
      }
      // An operator needs `list` on sys/tasks, and then sees each task its
      // policy lets it read on sys/tasks/<id> (the path `task show` checks):
      // one decision per task, so a page reads a bounded number of tasks.
      authorizeSubtreeAccess(request, node, 'list', 'sys/tasks', undefined);
      const visible = (view: TaskView) => canRead(request, node, view);
      return page(
        await tasks().list({
          ...(role ? { role } : {}),
          ...(state ? { state } : {}),
          ...(cursor !== undefined ? { cursor } : {}),
          limit,
          filter: visible,
        }),
      );
    },
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

  // By accessor, exactly as by id: the task named is found first, then the
  // caller is checked against *it* (`sys/tasks/<id>`, own subtree for a task).
  app.get<{ Params: { accessor: string } }>('/tasks/accessors/:accessor', {
    config: { access: { kind: 'self' } },
    schema: { tags: ['tasks'], summary: 'Look a task up by accessor (without its token)', params: accessorParams },
    handler: async (request) => {
      const task = await tasks().findByAccessor(request.params.accessor);
      authorizeTaskAccess(request, node, 'read', task);
      return task;
    },
  });

  app.post<{ Params: { accessor: string }; Body: { ttl: string } }>('/tasks/accessors/:accessor/extend', {
    config: { access: { kind: 'self' } },
    schema: {
      tags: ['tasks'],
      summary: 'Extend a task, within its role’s max TTL and its parent’s expiry (operator)',
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
      // Extending is an operator's decision (a task cannot lengthen its own
      // life), on the task named: `write` on sys/tasks/<id>.
      if (request.auth?.kind !== 'operator') {
        request.resourcePath = `sys/tasks/${task.id}`;
        request.decision = 'deny';
        throw new PermissionDeniedError();
      }
      authorizeTaskAccess(request, node, 'write', task);
      return tasks().extend(task.id, parseDuration(request.body.ttl));
    },
  });

  app.post<{ Params: { accessor: string } }>('/tasks/accessors/:accessor/revoke', {
    config: { access: { kind: 'self' } },
    schema: { tags: ['tasks'], summary: 'Revoke a task and its subtree by accessor', params: accessorParams },
    handler: async (request) => {
      const task = await tasks().findByAccessor(request.params.accessor);
      authorizeTaskAccess(request, node, 'revoke', task);
      return tasks().revoke(task.id, principalName(request.auth!));
    },
  });
}

/** Whether an operator's policy lets it read one task (`sys/tasks/<id>`); not recorded on the request. */
function canRead(request: FastifyRequest, node: CustosNode, task: Pick<TaskView, 'id'>): boolean {
  const principal = request.auth;
  if (principal?.kind !== 'operator') return false;
  return node.services().authorize(principal, 'read', `sys/tasks/${task.id}`, { sourceIp: request.ip, now: new Date() })
    .allowed;
}
