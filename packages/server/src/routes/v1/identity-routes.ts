import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import {
  CustosError,
  type CustosNode,
  type JwtAuthConfig,
  NotFoundError,
  parseDuration,
  UnauthenticatedError,
} from '@custos/core';
import type { FastifyInstance } from 'fastify';
import { loginLimit, loginRole, taskSubject } from './bootstrap-routes.js';
import { nameParams, resourceByName, roleAllowing, roleResource, ttlBody } from './route-params.js';
import { issuedView, type StartBody, startBodySchema, startTask } from './task-routes.js';

const methodResource = resourceByName('sys/auth/jwt/');

interface JwtMethodBody {
  issuer: string;
  audience: string | string[];
  jwks_url?: string;
  jwks?: { keys: Record<string, unknown>[] };
  algorithms?: string[];
  clock_tolerance_sec?: number;
  max_token_age_sec?: number;
  /** Claim name (or `/`-pointer) → operator label key of the tasks its logins start. */
  claim_labels?: Record<string, string>;
}

/**
 * Secure introduction without a long-lived secret in the agent: JWT
 * federation (a workload platform vouches for the agent) and mTLS with
 * certificates from custos's own CA.
 */
export async function identityRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.put<{ Params: { name: string }; Body: JwtMethodBody }>('/auth/jwt/methods/:name', {
    config: { access: { kind: 'policy', action: 'admin', resource: methodResource, operatorOnly: true } },
    schema: {
      tags: ['auth'],
      summary: 'Configure a JWT federation method (issuer, JWKS URL or keys, audience)',
      params: nameParams,
      body: {
        type: 'object',
        properties: {
          issuer: { type: 'string', maxLength: 1024 },
          audience: {
            anyOf: [
              { type: 'string', maxLength: 1024 },
              { type: 'array', items: { type: 'string' } },
            ],
          },
          jwks_url: { type: 'string', maxLength: 2048 },
          jwks: { type: 'object', properties: { keys: { type: 'array', maxItems: 64 } }, required: ['keys'] },
          algorithms: { type: 'array', items: { type: 'string', maxLength: 16 }, maxItems: 16 },
          clock_tolerance_sec: { type: 'integer', minimum: 0, maximum: 300 },
          max_token_age_sec: { type: 'integer', minimum: 1 },
          claim_labels: {
            type: 'object',
            additionalProperties: { type: 'string', maxLength: 64 },
            maxProperties: 32,
          },
        },
        required: ['issuer', 'audience'],
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      const b = request.body;
      if (!b.jwks_url === !b.jwks) throw new CustosError('CUSTOS_ERR_VALIDATION', 'Give jwks_url or jwks, not both.');
      const config = {
        name: request.params.name,
        issuer: b.issuer,
        audience: b.audience,
        jwks: b.jwks_url ? { url: b.jwks_url } : { keys: b.jwks!.keys },
        ...(b.algorithms ? { algorithms: b.algorithms } : {}),
        ...(b.clock_tolerance_sec !== undefined ? { clockToleranceSec: b.clock_tolerance_sec } : {}),
        ...(b.max_token_age_sec !== undefined ? { maxTokenAgeSec: b.max_token_age_sec } : {}),
        ...(b.claim_labels !== undefined ? { claimLabels: b.claim_labels } : {}),
      } as JwtAuthConfig;
      const written = await node.services().jwtMethods.write(config);
      return {
        name: written.name,
        issuer: written.issuer,
        audience: written.audience,
        ...(written.claimLabels ? { claim_labels: written.claimLabels } : {}),
      };
    },
  });

  app.get('/auth/jwt/methods', {
    config: { access: { kind: 'policy', action: 'list', resource: () => 'sys/auth/jwt/' } },
    schema: { tags: ['auth'], summary: 'List JWT methods' },
    handler: async () => ({ methods: await node.services().jwtMethods.list() }),
  });

  app.get<{ Params: { name: string } }>('/auth/jwt/methods/:name', {
    config: { access: { kind: 'policy', action: 'read', resource: methodResource } },
    schema: { tags: ['auth'], summary: 'Read a JWT method', params: nameParams },
    handler: async (request) => node.services().jwtMethods.read(request.params.name),
  });

  app.delete<{ Params: { name: string } }>('/auth/jwt/methods/:name', {
    config: { access: { kind: 'policy', action: 'admin', resource: methodResource, operatorOnly: true } },
    schema: { tags: ['auth'], summary: 'Delete a JWT method', params: nameParams },
    handler: async (request, reply) => {
      await node.services().jwtMethods.delete(request.params.name);
      return reply.code(204).send();
    },
  });

  app.post<{ Body: StartBody & { role: string; jwt: string; method?: string } }>('/auth/jwt/login', {
    config: { access: { kind: 'public' }, rateLimit: loginLimit },
    schema: {
      tags: ['auth'],
      summary: 'Exchange a workload identity JWT for a task token of a role',
      body: {
        ...startBodySchema,
        properties: {
          ...startBodySchema.properties,
          role: { type: 'string', maxLength: 64 },
          jwt: { type: 'string', maxLength: 16_384 },
          method: { type: 'string', maxLength: 64 },
        },
        required: ['role', 'jwt'],
      },
    },
    handler: async (request) => {
      const { role: roleName, jwt, method, ...start } = request.body;
      const services = node.services();
      const role = await loginRole(node, request, 'jwt', roleName);
      // Why a JWT was refused (expired, wrong audience, …) reaches the audit
      // event through the error's auditReason, never the client.
      const identity = await services.jwtMethods.login(role, jwt, method).catch((error: unknown) => {
        throw error instanceof NotFoundError ? new UnauthenticatedError() : error;
      });
      const sub = `jwt:${String(identity.claims.iss)}#${identity.subject}`;
      // Operator labels come from the method's claim mapping (the issuer
      // vouches for each value); the body's labels are the agent's own.
      const issued = await startTask(node, role, sub, 'jwt', start, { from: 'login', granted: identity.labels });
      request.auth = { kind: 'task', task: taskSubject(issued.task), role, labels: issued.task.labels };
      return issuedView(request, issued);
    },
  });

  app.post<{ Params: { name: string }; Body: { ttl?: string } }>('/roles/:name/certs', {
    config: { access: { kind: 'policy', action: 'issue', resource: roleResource, operatorOnly: true } },
    schema: {
      tags: ['auth'],
      summary: 'Issue a short-lived mTLS client certificate (SPIFFE URI SAN) for an agent of this role',
      params: nameParams,
      body: ttlBody,
    },
    handler: async (request) => {
      const role = await roleAllowing(node, request.params.name, 'cert');
      return node.services().certs.issue(role, parseDuration(request.body?.ttl ?? '1h', 30 * 86_400_000));
    },
  });

  app.post<{ Body: { serial: string } }>('/auth/cert/revoke', {
    config: { access: { kind: 'policy', action: 'revoke', resource: () => 'sys/certs' } },
    schema: {
      tags: ['auth'],
      summary: 'Revoke a client certificate by serial',
      body: {
        type: 'object',
        properties: { serial: { type: 'string', maxLength: 128 } },
        required: ['serial'],
        additionalProperties: false,
      },
    },
    handler: async (request) => {
      if (!(await node.services().certs.revoke(request.body.serial))) throw new NotFoundError();
      return { revoked: request.body.serial };
    },
  });

  app.get('/auth/cert/ca', {
    config: { access: { kind: 'public' }, unaudited: true },
    schema: { tags: ['auth'], summary: 'The internal CA certificate (PEM)' },
    handler: async () => ({ ca_pem: node.services().certs.caPem, trust_domain: node.services().certs.trustDomain }),
  });

  app.post<{ Body: StartBody }>('/auth/cert/login', {
    config: { access: { kind: 'public' }, rateLimit: loginLimit },
    schema: {
      tags: ['auth'],
      summary: 'Log in with the TLS client certificate of this connection (mTLS listener): no bearer secret',
      body: startBodySchema,
    },
    handler: async (request) => {
      const socket = request.raw.socket as Partial<TLSSocket>;
      const raw = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false)?.raw : undefined;
      if (!raw) throw new UnauthenticatedError();
      const services = node.services();
      const verified = await services.certs.verify(new X509Certificate(raw));
      const role = await loginRole(node, request, 'cert', verified.role, { roleId: verified.roleId });
      const issued = await startTask(node, role, verified.spiffeId, 'cert', request.body ?? {}, { from: 'login' });
      request.auth = { kind: 'task', task: taskSubject(issued.task), role, labels: issued.task.labels };
      return issuedView(request, issued);
    },
  });
}
