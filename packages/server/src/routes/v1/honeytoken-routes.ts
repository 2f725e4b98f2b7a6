import {
  type CustosNode,
  HONEYTOKEN_KINDS,
  type HoneytokenKind,
  PermissionDeniedError,
  principalName,
  validateSecretPath,
} from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Every honeytoken route needs `admin` on this one resource — not a
 * resource per path, so no policy can let someone learn the honeytokens of
 * one prefix (`sys/honeytokens/kv/finance/*`) without being an admin of all.
 */
export const HONEYTOKEN_RESOURCE = 'sys/honeytokens';

const access = { kind: 'policy', action: 'admin', resource: () => HONEYTOKEN_RESOURCE, operatorOnly: true } as const;

const pathProperty = { type: 'string', minLength: 4, maxLength: 512 } as const;

const honeytokenView = {
  type: 'object',
  properties: {
    path: { type: 'string' },
    kind: { type: 'string', enum: [...HONEYTOKEN_KINDS] },
    created_time: { type: 'string' },
    created_by: { type: 'string' },
  },
} as const;

/**
 * The decoy secret is written (or destroyed) with the caller's own power
 * too: `admin` on `sys/honeytokens` alone does not let one put a secret
 * where one may not write, nor remove one where one may not delete.
 */
function authorizeOnPath(request: FastifyRequest, node: CustosNode, action: 'write' | 'delete', path: string): void {
  const principal = request.auth;
  if (
    !principal ||
    !node.services().authorize(principal, action, path, { sourceIp: request.ip, now: new Date() }).allowed
  ) {
    request.decision = 'deny';
    request.auditReason = `honeytoken_requires_secret_${action}`;
    throw new PermissionDeniedError();
  }
}

/**
 * `/v1/honeytokens`: decoy secrets (see docs/anomaly.md#honeytokens). Paths
 * travel in request bodies, never in URLs: URLs reach the server log and
 * the audit trail's `route`, and which paths are decoys must stay known to
 * admins only. A non-admin — a task, or an operator without `admin` on
 * `sys/honeytokens` — is refused before the body is read, with the same
 * answer whatever it names.
 */
export async function honeytokenRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  const honeytokens = () => node.services().honeytokens;

  app.get('/honeytokens', {
    config: { access },
    schema: {
      tags: ['honeytokens'],
      summary: 'List honeytokens (path, kind, creation; never values)',
      response: { 200: { type: 'object', properties: { honeytokens: { type: 'array', items: honeytokenView } } } },
    },
    handler: async () => ({ honeytokens: honeytokens().list() }),
  });

  app.post<{ Body: { path: string; kind: HoneytokenKind; host?: string; engine?: string } }>('/honeytokens', {
    config: { access },
    schema: {
      tags: ['honeytokens'],
      summary:
        'Create a honeytoken: a random decoy of the kind, written as a new secret at path (its value returned once)',
      body: {
        type: 'object',
        properties: {
          path: pathProperty,
          kind: { type: 'string', enum: [...HONEYTOKEN_KINDS] },
          host: { type: 'string', minLength: 1, maxLength: 300 },
          engine: { type: 'string', minLength: 1, maxLength: 64 },
        },
        required: ['path', 'kind'],
        additionalProperties: false,
      },
      response: {
        200: {
          type: 'object',
          properties: {
            ...honeytokenView.properties,
            data: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
      },
    },
    handler: async (request) => {
      const { path, kind, host, engine } = request.body;
      authorizeOnPath(request, node, 'write', validateSecretPath(path));
      return honeytokens().create(
        path,
        kind,
        { ...(host !== undefined ? { host } : {}), ...(engine !== undefined ? { engine } : {}) },
        principalName(request.auth!),
      );
    },
  });

  app.post<{ Body: { path: string } }>('/honeytokens/delete', {
    config: { access },
    schema: {
      tags: ['honeytokens'],
      summary: 'Delete a honeytoken: its marker and the decoy secret with every version',
      body: { type: 'object', properties: { path: pathProperty }, required: ['path'], additionalProperties: false },
    },
    handler: async (request, reply) => {
      const path = validateSecretPath(request.body.path);
      authorizeOnPath(request, node, 'delete', path);
      await honeytokens().delete(path);
      return reply.code(204).send();
    },
  });
}
