import {
  ACCESS_REQUEST_STATUSES,
  type AccessRequestStatus,
  CustosError,
  type CustosNode,
  type Decider,
  NotFoundError,
  PermissionDeniedError,
  parseDuration,
  principalName,
  requestResource,
} from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Longest a `GET /v1/requests/:id?wait=…` holds the connection. */
const MAX_WAIT_MS = 60_000;

const ttlProperty = {
  anyOf: [
    { type: 'string', maxLength: 32 },
    { type: 'integer', minimum: 1 },
  ],
} as const;
const idParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
  required: ['id'],
} as const;

const requestView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string' },
    task_id: { type: 'string' },
    chain: { type: 'array', items: { type: 'string' } },
    identity: { type: 'string' },
    role: { type: 'string' },
    scope: { type: 'string' },
    reason: { type: 'string' },
    ttl_seconds: { type: 'integer' },
    children: { type: 'boolean' },
    approvals_required: { type: 'integer' },
    approvals: {
      type: 'array',
      items: { type: 'object', properties: { by: { type: 'string' }, at: { type: 'string' } } },
    },
    created_at: { type: 'string' },
    decided_at: { type: 'string' },
    decided_by: { type: 'string' },
    expires_at: { type: 'string' },
    deny_reason: { type: 'string' },
    revoked_at: { type: 'string' },
    revoked_by: { type: 'string' },
    requested_scope: { type: 'string' },
  },
} as const;
const oneRequest = { type: 'object', properties: { request: requestView } } as const;

function ttlSeconds(ttl: string | number | undefined): number | undefined {
  if (ttl === undefined) return undefined;
  return Math.floor(parseDuration(ttl, 24 * 3_600_000) / 1000);
}

/**
 * `/v1/requests`: just-in-time access requests (docs/jit.md). Every route
 * takes any valid token and decides inside, on the request itself (its
 * scope names the resources an approver needs `approve` on, which no
 * route-level resource could know before the request is read):
 * - a task creates requests for itself only, and sees and withdraws only its own;
 * - an operator lists with `list` on `sys/requests/`, reads one with `read`
 *   on `sys/requests/<id>`, and decides with `approve` on
 *   `sys/requests/<action>/<path>` for every entry of the request's scope.
 * A request id a caller may not see answers as one that does not exist.
 */
export async function requestRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const services = () => node.services();
  const self = { access: { kind: 'self' } } as const;
  // Long polls end when the server closes, so a graceful shutdown does not wait out their hold.
  const waiting = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const abort of waiting) abort.abort();
  });

  const allowed = (request: FastifyRequest, action: 'list' | 'read' | 'approve', path: string): boolean =>
    request.auth !== null &&
    services().authorize(request.auth, action, path, { sourceIp: request.ip, now: new Date() }).allowed;

  const refuse = (request: FastifyRequest, reason: string, error: Error = new PermissionDeniedError()): never => {
    request.decision = 'deny';
    request.auditReason = reason;
    throw error;
  };

  /** The request, if the caller may see it: its own task's, or an operator's with `read`. */
  const visible = async (request: FastifyRequest, id: string) => {
    request.resourcePath = requestResource(id);
    const principal = request.auth!;
    const found = await services().requests.show(id);
    if (principal.kind === 'task') {
      // A task sees its own requests only; another's is "not found", not "forbidden" (no oracle).
      if (found.task_id !== principal.task.task_id) refuse(request, 'request_of_another_task', new NotFoundError());
    } else if (!allowed(request, 'read', requestResource(id))) {
      refuse(request, 'request_read_denied');
    }
    return found;
  };

  const decider = (request: FastifyRequest): Decider => {
    const principal = request.auth!;
    if (principal.kind === 'task') {
      return { kind: 'task', name: principalName(principal), chain: principal.task.chain };
    }
    return {
      kind: 'operator',
      name: principalName(principal),
      root: principal.token.root,
      policies: principal.token.policies,
      mayApprove: (resource) => allowed(request, 'approve', resource),
    };
  };

  /** Runs a decision and marks the audit event as refused when the service refused it. */
  const deciding = async <T>(request: FastifyRequest, path: string, run: () => Promise<T>): Promise<T> => {
    request.resourcePath = path;
    try {
      return await run();
    } catch (error) {
      request.decision = 'deny';
      if (error instanceof CustosError) request.auditReason = error.code.replace(/^CUSTOS_ERR_/, '').toLowerCase();
      throw error;
    }
  };

  app.post<{ Body: { scope: string; reason: string; ttl?: string | number; children?: boolean } }>('/requests', {
    config: self,
    schema: {
      tags: ['requests'],
      summary: 'A task asks for a scope beyond its own (within its role’s request ceiling) for itself',
      body: {
        type: 'object',
        properties: {
          scope: { type: 'string', minLength: 1, maxLength: 4096 },
          reason: { type: 'string', minLength: 1, maxLength: 1000 },
          ttl: ttlProperty,
          children: { type: 'boolean' },
        },
        required: ['scope', 'reason'],
        additionalProperties: false,
      },
      response: { 200: oneRequest, 201: oneRequest },
    },
    handler: async (request, reply) => {
      const principal = request.auth!;
      request.resourcePath = 'sys/requests/';
      // A request is made by a task for itself: an operator holds no task to elevate.
      if (principal.kind !== 'task') refuse(request, 'request_by_operator');
      const task = (principal as Extract<typeof principal, { kind: 'task' }>).task;
      const b = request.body;
      const ttl = ttlSeconds(b.ttl);
      const { request: created, created: isNew } = await deciding(request, 'sys/requests/', () =>
        services().requests.create(task, {
          scope: b.scope,
          reason: b.reason,
          ...(ttl !== undefined ? { ttlSeconds: ttl } : {}),
          ...(b.children !== undefined ? { children: b.children } : {}),
        }),
      );
      request.resourcePath = requestResource(created.id);
      return reply.code(isNew ? 201 : 200).send({ request: created });
    },
  });

  app.get<{ Querystring: { status?: AccessRequestStatus | 'all'; limit?: number } }>('/requests', {
    config: self,
    schema: {
      tags: ['requests'],
      summary: 'List access requests: an operator with list on sys/requests/ sees all, a task its own',
      querystring: {
        type: 'object',
        properties: {
          status: { type: 'string', enum: [...ACCESS_REQUEST_STATUSES, 'all'] },
          limit: { type: 'integer', minimum: 1, maximum: 1000 },
        },
        additionalProperties: false,
      },
      response: { 200: { type: 'object', properties: { requests: { type: 'array', items: requestView } } } },
    },
    handler: async (request) => {
      const principal = request.auth!;
      request.resourcePath = 'sys/requests/';
      const status = request.query.status === 'all' ? undefined : request.query.status;
      if (principal.kind === 'operator' && !allowed(request, 'list', 'sys/requests/')) {
        refuse(request, 'request_list_denied');
      }
      const requests = await services().requests.list({
        ...(status ? { status } : {}),
        ...(principal.kind === 'task' ? { taskId: principal.task.task_id } : {}),
        ...(request.query.limit ? { limit: request.query.limit } : {}),
      });
      return { requests };
    },
  });

  app.get<{ Params: { id: string }; Querystring: { wait?: string } }>('/requests/:id', {
    config: self,
    schema: {
      tags: ['requests'],
      summary: 'Read an access request; ?wait=30s holds the answer until it is decided (at most 60 s)',
      params: idParams,
      querystring: {
        type: 'object',
        properties: { wait: { type: 'string', maxLength: 16 } },
        additionalProperties: false,
      },
      response: { 200: oneRequest },
    },
    handler: async (request) => {
      const found = await visible(request, request.params.id);
      if (request.query.wait === undefined || found.status !== 'pending') return { request: found };
      const waitMs = Math.min(parseDuration(request.query.wait, MAX_WAIT_MS), MAX_WAIT_MS);
      const abort = new AbortController();
      const onClose = () => abort.abort();
      request.raw.once('close', onClose);
      waiting.add(abort);
      try {
        return { request: await services().requests.wait(found.id, waitMs, abort.signal) };
      } finally {
        waiting.delete(abort);
        request.raw.off('close', onClose);
      }
    },
  });

  const narrowBody = {
    type: ['object', 'null'],
    properties: {
      ttl: ttlProperty,
      scope: { type: 'string', minLength: 1, maxLength: 4096 },
      children: { type: 'boolean' },
    },
    additionalProperties: false,
  } as const;

  app.post<{ Params: { id: string }; Body: { ttl?: string | number; scope?: string; children?: boolean } }>(
    '/requests/:id/approve',
    {
      config: self,
      schema: {
        tags: ['requests'],
        summary: 'Approve (one vote; narrowing scope, TTL or children allowed, never widening)',
        params: idParams,
        body: narrowBody,
        response: { 200: oneRequest },
      },
      handler: async (request) => {
        const b = request.body ?? {};
        const ttl = ttlSeconds(b.ttl);
        const approved = await deciding(request, requestResource(request.params.id), () =>
          services().requests.approve(request.params.id, decider(request), {
            ...(ttl !== undefined ? { ttlSeconds: ttl } : {}),
            ...(b.scope !== undefined ? { scope: b.scope } : {}),
            ...(b.children !== undefined ? { children: b.children } : {}),
          }),
        );
        return { request: approved };
      },
    },
  );

  app.post<{ Params: { id: string }; Body: { reason?: string } }>('/requests/:id/deny', {
    config: self,
    schema: {
      tags: ['requests'],
      summary: 'Deny a pending request (final)',
      params: idParams,
      body: {
        type: ['object', 'null'],
        properties: { reason: { type: 'string', maxLength: 1000 } },
        additionalProperties: false,
      },
      response: { 200: oneRequest },
    },
    handler: async (request) => {
      const denied = await deciding(request, requestResource(request.params.id), () =>
        services().requests.deny(request.params.id, decider(request), request.body?.reason),
      );
      return { request: denied };
    },
  });

  app.post<{ Params: { id: string } }>('/requests/:id/revoke', {
    config: self,
    schema: {
      tags: ['requests'],
      summary: 'End an approved request’s elevation at once (or withdraw a pending one)',
      params: idParams,
      response: { 200: oneRequest },
    },
    handler: async (request) => {
      const revoked = await deciding(request, requestResource(request.params.id), () =>
        services().requests.revoke(request.params.id, decider(request)),
      );
      return { request: revoked };
    },
  });
}
