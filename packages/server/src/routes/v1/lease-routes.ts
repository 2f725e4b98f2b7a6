import { type CustosNode, type LeaseView, type PolicyAction, parseDuration } from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeSubtreeAccess } from '../../task-access.js';

const idParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^lea_[A-Za-z0-9_-]{22}$' } },
  required: ['id'],
} as const;

/** Who may manage a lease: see {@link authorizeSubtreeAccess} (`sys/leases/<id>`; the listing: `sys/leases`). */
const authorizeLease = (request: FastifyRequest, node: CustosNode, action: PolicyAction, lease?: LeaseView) =>
  authorizeSubtreeAccess(request, node, action, lease ? `sys/leases/${lease.id}` : 'sys/leases', lease?.task_chain);

/** `/v1/leases`: list, read, renew and revoke dynamic credential leases. */
export async function leaseRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const leases = () => node.services().leases;

  app.get<{ Querystring: { task_id?: string; state?: string; limit?: string } }>('/leases', {
    // Decided in the handler: what a caller may see depends on who it is.
    config: { access: { kind: 'self' } },
    schema: {
      tags: ['leases'],
      summary:
        'List the leases the caller may see (a task: its own subtree’s; an operator: each it may read on sys/leases/<id>)',
      querystring: {
        type: 'object',
        properties: {
          task_id: { type: 'string', pattern: '^tsk_[A-Za-z0-9_-]{22}$' },
          state: { type: 'string', enum: ['active', 'revoking', 'revoked', 'revoke_failed'] },
          limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
        },
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      // A listing shows nothing the caller could not read lease by lease (as
      // GET /v1/tasks): a task, the leases of its own subtree (`task_id`
      // only narrows within it); an operator needs `list` on sys/leases, and
      // then sees each lease its policy lets it read on sys/leases/<id> —
      // `task_id` does not widen that.
      authorizeLease(request, node, 'list');
      const principal = request.auth;
      const { task_id: taskId, state, limit } = request.query;
      const list = await leases().list({
        ...(principal?.kind === 'task'
          ? { subtree: principal.task.chain }
          : { visible: (lease: LeaseView) => canRead(request, node, lease) }),
        ...(taskId ? { taskId } : {}),
        ...(state ? { state } : {}),
        ...(limit ? { limit: Number(limit) } : {}),
      });
      return { leases: list };
    },
  });

  app.get<{ Params: { id: string } }>('/leases/:id', {
    config: { access: { kind: 'self' } },
    schema: { tags: ['leases'], summary: 'Read a lease', params: idParams },
    handler: async (request) => {
      const lease = await leases().read(request.params.id);
      authorizeLease(request, node, 'read', lease);
      return lease;
    },
  });

  app.post<{ Params: { id: string }; Body: { increment?: string } | undefined }>('/leases/:id/renew', {
    config: { access: { kind: 'self' } },
    schema: {
      tags: ['leases'],
      summary: 'Extend a lease (never past its role’s max TTL or its task)',
      params: idParams,
      body: {
        type: ['object', 'null'],
        properties: { increment: { type: 'string', maxLength: 32 } },
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const lease = await leases().read(request.params.id);
      authorizeLease(request, node, 'issue', lease);
      const increment = request.body?.increment ? parseDuration(request.body.increment) : 3_600_000;
      return leases().renew(lease.id, increment);
    },
  });

  app.post<{ Params: { id: string } }>('/leases/:id/revoke', {
    config: { access: { kind: 'self' } },
    schema: { tags: ['leases'], summary: 'Revoke a lease now (drops the user, ends its sessions)', params: idParams },
    handler: async (request) => {
      const lease = await leases().read(request.params.id);
      authorizeLease(request, node, 'revoke', lease);
      return leases().revoke(lease.id);
    },
  });
}

/** Whether an operator's policy lets it read one lease (the path `GET /v1/leases/:id` checks). */
function canRead(request: FastifyRequest, node: CustosNode, lease: Pick<LeaseView, 'id'>): boolean {
  const principal = request.auth;
  if (principal?.kind !== 'operator') return false;
  return node
    .services()
    .authorize(principal, 'read', `sys/leases/${lease.id}`, { sourceIp: request.ip, now: new Date() }).allowed;
}
