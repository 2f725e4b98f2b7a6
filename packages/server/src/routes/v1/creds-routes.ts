import { type CustosNode, type LeaseOwner, parseDuration, principalName } from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';

type CredsRequest = FastifyRequest<{ Params: { engine: string; role: string } }>;
const NAME = '^[a-z0-9][a-z0-9_-]{0,62}$';
/** The policy resource of an engine role: `issue:pg-main/reader` in a task scope names it. */
const credsResource = (request: FastifyRequest) => {
  const { engine, role } = (request as CredsRequest).params;
  return `${engine}/${role}`;
};

/**
 * `POST /v1/creds/{engine}/{role}`: a fresh database user leased to the
 * calling task (it is dropped when the task ends). An operator token whose
 * policy allows `issue` gets a lease owned by no task, bounded by its TTL.
 */
export async function credsRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.post<{ Params: { engine: string; role: string }; Body: { ttl?: string } | undefined }>('/creds/:engine/:role', {
    config: { access: { kind: 'policy', action: 'issue', resource: credsResource } },
    schema: {
      tags: ['leases'],
      summary: 'Issue dynamic database credentials leased to the calling task',
      params: {
        type: 'object',
        properties: { engine: { type: 'string', pattern: NAME }, role: { type: 'string', pattern: NAME } },
        required: ['engine', 'role'],
      },
      body: {
        type: ['object', 'null'],
        properties: { ttl: { type: 'string', maxLength: 32 } },
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const principal = request.auth;
      if (!principal) throw new Error('unreachable: the auth plugin sets auth for policy routes');
      const owner: LeaseOwner =
        principal.kind === 'task'
          ? {
              name: principalName(principal),
              task: {
                id: principal.task.task_id,
                chain: principal.task.chain,
                expiresAtMs: principal.task.exp * 1_000,
              },
            }
          : { name: principalName(principal) };
      const ttl = request.body?.ttl;
      return node
        .services()
        .leases.issue(request.params.engine, request.params.role, owner, ttl ? parseDuration(ttl) : undefined);
    },
  });
}
