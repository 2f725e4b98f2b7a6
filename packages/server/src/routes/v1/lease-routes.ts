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

  app.get<{ Querystring: { task_id?: string; state?: string } }>('/leases', {
    config: { access: { kind: 'self' } },
    schema: {
      tags: ['leases'],
      summary: 'List leases (a task: its own; an operator: all, or one task’s)',
      querystring: {
        type: 'object',
        properties: {
          task_id: { type: 'string', pattern: '^tsk_[A-Za-z0-9_-]{22}$' },
          state: { type: 'string', enum: ['active', 'revoking', 'revoked', 'revoke_failed'] },
        },
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      authorizeLease(request, node, 'list');
      const principal = request.auth;
      const taskId = principal?.kind === 'task' ? principal.task.task_id : request.query.task_id;
      const list = await leases().list({
        ...(taskId ? { taskId } : {}),
        ...(request.query.state ? { state: request.query.state } : {}),
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
