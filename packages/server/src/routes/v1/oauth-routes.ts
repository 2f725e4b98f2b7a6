import { type CustosNode, isCustosError, parseDuration } from '@custos/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requestUrl } from '../../plugins/auth-plugin.js';
import { toCustosError } from '../../plugins/error-handler.js';
import { authorizeDelegation } from '../../task-access.js';
import { taskSubject } from './bootstrap-routes.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** RFC 6749 §5.2 error names for custos codes (the custos code is kept beside it). */
const OAUTH_ERRORS: Record<string, string> = {
  CUSTOS_ERR_SCOPE_EXCEEDS_PARENT: 'invalid_scope',
  CUSTOS_ERR_VALIDATION: 'invalid_request',
  CUSTOS_ERR_INVALID_TTL: 'invalid_request',
  CUSTOS_ERR_TTL_EXCEEDS_PARENT: 'invalid_request',
  CUSTOS_ERR_DELEGATION_DEPTH: 'invalid_request',
  CUSTOS_ERR_UNAUTHENTICATED: 'invalid_grant',
  CUSTOS_ERR_PERMISSION_DENIED: 'access_denied',
  CUSTOS_ERR_DPOP_REQUIRED: 'invalid_dpop_proof',
};

interface ExchangeBody {
  grant_type?: string;
  subject_token?: string;
  subject_token_type?: string;
  requested_token_type?: string;
  scope?: string;
  /** custos extension: the child's lifetime (`10m`); RFC 8693 has no such parameter. */
  ttl?: string;
  /** custos extension: the sub-agent's DPoP key thumbprint. */
  dpop_jkt?: string;
}

/**
 * OAuth endpoints: RFC 8693 token exchange for delegation, RFC 7662
 * introspection. They accept `application/x-www-form-urlencoded` (as the
 * RFCs define) and JSON, and answer errors in RFC 6749 form with the custos
 * code beside it.
 */
export async function oauthRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 64 * 1024 },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const custos = toCustosError(error);
    request.errorCode = custos.code;
    const auditReason = (error as { auditReason?: unknown })?.auditReason;
    if (typeof auditReason === 'string') request.auditReason = auditReason.slice(0, 64);
    const status = custos.code === 'CUSTOS_ERR_UNAUTHENTICATED' ? 400 : custos.status;
    return reply.code(status).send({
      error: OAUTH_ERRORS[custos.code] ?? (status >= 500 ? 'server_error' : 'invalid_request'),
      error_description: custos.message,
      custos_code: custos.code,
    });
  });

  app.post<{ Body: ExchangeBody }>('/oauth/token', {
    // The subject token *is* the credential: checked here, audited like any
    // request. Not rate limited like the login routes: it takes no guessable
    // secret (a forged token fails its Ed25519 signature), and minting
    // thousands of children a second is what a coordinator does.
    config: { access: { kind: 'public' } },
    schema: {
      tags: ['oauth'],
      summary: 'RFC 8693 token exchange: a task token for a narrower child task token',
      body: {
        type: 'object',
        properties: {
          grant_type: { type: 'string', maxLength: 128 },
          subject_token: { type: 'string', maxLength: 8192 },
          subject_token_type: { type: 'string', maxLength: 128 },
          requested_token_type: { type: 'string', maxLength: 128 },
          scope: { type: 'string', maxLength: 4096 },
          ttl: { type: 'string', maxLength: 32 },
          dpop_jkt: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
          audience: { type: 'string', maxLength: 256 },
          resource: { type: 'string', maxLength: 1024 },
          actor_token: { type: 'string', maxLength: 8192 },
          actor_token_type: { type: 'string', maxLength: 128 },
        },
        required: ['grant_type', 'subject_token'],
      },
    },
    handler: async (request, reply) => {
      const b = request.body;
      if (b.grant_type !== TOKEN_EXCHANGE) {
        return reply.code(400).send({ error: 'unsupported_grant_type', custos_code: 'CUSTOS_ERR_VALIDATION' });
      }
      if (b.subject_token_type && ![JWT_TYPE, ACCESS_TOKEN_TYPE].includes(b.subject_token_type)) {
        return reply.code(400).send({ error: 'invalid_request', custos_code: 'CUSTOS_ERR_VALIDATION' });
      }
      const services = node.services();
      const principal = await services.authenticator.authenticateTask(b.subject_token ?? '', {
        method: request.method,
        url: requestUrl(request, services.issuer),
        ...(typeof request.headers.dpop === 'string' ? { dpop: request.headers.dpop } : {}),
      });
      request.auth = principal;
      authorizeDelegation(request, node, principal.task);
      const issued = await services.tasks.delegate(
        principal.task,
        {
          ...(b.scope ? { scope: b.scope } : {}),
          ...(b.ttl ? { ttlMs: parseDuration(b.ttl) } : {}),
          ...(b.dpop_jkt ? { jkt: b.dpop_jkt } : {}),
        },
        principal.role,
      );
      request.auditIssuedTask = issued.task.id;
      return {
        access_token: issued.token,
        issued_token_type: JWT_TYPE,
        token_type: issued.task.jkt ? 'DPoP' : 'Bearer',
        expires_in: Math.max(0, Math.floor((Date.parse(issued.task.expire_time) - Date.now()) / 1000)),
        scope: issued.task.scope,
        task_id: issued.task.id,
        accessor: issued.task.accessor,
      };
    },
  });

  app.post<{ Body: { token?: string; token_type_hint?: string } }>('/oauth/introspect', {
    // RFC 7662 §2.1: the caller must be authorised; any valid custos token is.
    config: { access: { kind: 'self' } },
    schema: {
      tags: ['oauth'],
      summary: 'RFC 7662 introspection: active false for revoked, ended or expired tasks',
      body: {
        type: 'object',
        properties: { token: { type: 'string', maxLength: 8192 }, token_type_hint: { type: 'string', maxLength: 64 } },
        required: ['token'],
      },
    },
    handler: async (request) => {
      try {
        const services = node.services();
        // Introspection answers for bearer use: a DPoP-bound token is reported
        // with its cnf, and the resource server checks the proof itself.
        const task = await services.authenticator.verifyTaskToken(request.body.token ?? '', {
          method: 'POST',
          url: 'introspection',
          allowUnproven: true,
        });
        return {
          active: true,
          token_type: task.jkt ? 'DPoP' : 'Bearer',
          sub: task.sub,
          scope: task.scope,
          exp: task.exp,
          iss: services.issuer,
          task_id: task.task_id,
          parent_task_id: task.parent_task_id,
          role: task.role,
          depth: task.depth,
          task_chain: task.chain,
          ...(task.act ? { act: task.act } : {}),
          ...(task.jkt ? { cnf: { jkt: task.jkt } } : {}),
        };
      } catch (error) {
        if (isCustosError(error) && error.code === 'CUSTOS_ERR_UNAUTHENTICATED') return { active: false };
        throw error;
      }
    },
  });
}

export { taskSubject };
