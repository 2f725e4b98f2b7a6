import {
  type CustosNode,
  canonicalResourceUrl,
  isCustosError,
  isScopeSubset,
  parseDuration,
  parseScope,
  type ResourceRecord,
  ResourceUrlError,
  resourceUseResource,
  TASK_TOKEN_AUDIENCE,
  TaskTokenInvalidError,
} from '@custos/core';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requestUrl } from '../../plugins/auth-plugin.js';
import { noteError } from '../../plugins/error-handler.js';
import { authorizeDelegation } from '../../task-access.js';
import { introspectionError, type OAuthErrorResponse, OAuthRequestError, tokenEndpointError } from './oauth-errors.js';
import { introspectionResponseSchema, oauthErrorSchema, tokenExchangeResponseSchema } from './oauth-schemas.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/**
 * What a task token is, in RFC 8693 token type identifiers: an OAuth access
 * token in JWT form. Either may name a subject token, and either may be
 * requested; the response names the one asked for (JWT by default).
 */
const TASK_TOKEN_TYPES: readonly string[] = [JWT_TYPE, ACCESS_TOKEN_TYPE];

interface ExchangeBody {
  grant_type: string;
  subject_token: string;
  subject_token_type: string;
  requested_token_type?: string;
  scope?: string;
  /** custos extension: the child's lifetime (`10m`); RFC 8693 has no such parameter. */
  ttl?: string;
  /** custos extension: the sub-agent's DPoP key thumbprint. */
  dpop_jkt?: string;
  audience?: string | string[];
  resource?: string | string[];
  actor_token?: string;
  actor_token_type?: string;
}

const text = (maxLength: number) => ({ type: 'string', maxLength }) as const;
/** RFC 8693 lets `audience` and `resource` repeat; every other parameter appears at most once (RFC 6749 §3.2). */
const repeatable = (maxLength: number) =>
  ({ anyOf: [text(maxLength), { type: 'array', items: text(maxLength), minItems: 1, maxItems: 16 }] }) as const;

/** Both endpoints take the RFC's form encoding, and JSON as a custos convenience. */
const CONSUMES = ['application/x-www-form-urlencoded', 'application/json'];

/**
 * OAuth endpoints: RFC 8693 token exchange for delegation, RFC 7662
 * introspection. They accept `application/x-www-form-urlencoded` (as the
 * RFCs define) and JSON, and answer errors in RFC 6749 form with the custos
 * code beside it (see oauth-errors.ts for which error and status each
 * refusal gets).
 */
export async function oauthRoutes(app: FastifyInstance, { node }: { node: CustosNode }): Promise<void> {
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 64 * 1024 },
    formParser,
  );
  await app.register(async (scope) => {
    scope.setErrorHandler(oauthErrorHandler(tokenEndpointError));
    tokenExchangeRoute(scope, node);
  });
  await app.register(async (scope) => {
    scope.setErrorHandler(oauthErrorHandler(introspectionError));
    introspectionRoute(scope, node);
  });
}

/**
 * Parses a form body, keeping a repeated parameter as an array of its values.
 * Taking the first or last value silently would let `scope=a&scope=b` or
 * `audience=custos&audience=other` mean something the client did not see
 * checked; as an array it fails the schema of a single-valued parameter
 * (`invalid_request`) and is checked value by value where RFC 8693 allows
 * repeats. `Object.fromEntries` defines own properties, so a `__proto__`
 * parameter is a plain key, never a prototype.
 */
function formParser(
  _request: FastifyRequest,
  body: string | Buffer,
  done: (error: FastifyError | null, body?: unknown) => void,
): void {
  const params = new Map<string, string | string[]>();
  for (const [name, value] of new URLSearchParams(body.toString())) {
    const prior = params.get(name);
    params.set(name, prior === undefined ? value : [...(Array.isArray(prior) ? prior : [prior]), value]);
  }
  done(null, Object.fromEntries(params));
}

function oauthErrorHandler(shape: (error: unknown, custos: ReturnType<typeof noteError>) => OAuthErrorResponse) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = shape(error, noteError(error, request));
    return reply.code(status).send(body);
  };
}

function tokenExchangeRoute(app: FastifyInstance, node: CustosNode): void {
  app.post<{ Body: ExchangeBody }>('/oauth/token', {
    // The subject token *is* the credential: checked here, audited like any
    // request. Not rate limited like the login routes: it takes no guessable
    // secret (a forged token fails its Ed25519 signature), and minting
    // thousands of children a second is what a coordinator does.
    config: { access: { kind: 'public' } },
    schema: {
      tags: ['oauth'],
      summary: 'RFC 8693 token exchange: a task token for a narrower child task token',
      description:
        'The subject token is a live task token; the answer is a child task token whose scope and lifetime are ' +
        'within the parent’s. `ttl` and `dpop_jkt` are custos extensions. `resource` (RFC 8707, once) names a ' +
        'registered resource the parent may `use`: the child’s `aud` is then that URL alone, and custos refuses ' +
        'the child’s token itself. `audience` may only name `custos`, and not beside `resource`; `actor_token` and ' +
        'token types other than an access token in JWT form are refused (`invalid_target`, `invalid_request`) ' +
        'rather than ignored.',
      consumes: CONSUMES,
      body: {
        type: 'object',
        properties: {
          grant_type: text(128),
          subject_token: text(8192),
          subject_token_type: text(128),
          requested_token_type: text(128),
          scope: text(4096),
          ttl: text(32),
          dpop_jkt: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
          audience: repeatable(256),
          resource: repeatable(1024),
          actor_token: text(8192),
          actor_token_type: text(128),
        },
        // RFC 8693 §2.1 makes `subject_token_type` REQUIRED. Taking its
        // absence to mean "a custos task token" accepted requests a
        // conforming server refuses, and let clients that never send it
        // work only here. Missing: 400 `invalid_request`, naming it.
        required: ['grant_type', 'subject_token', 'subject_token_type'],
      },
      response: { 200: tokenExchangeResponseSchema, '4xx': oauthErrorSchema },
    },
    handler: async (request) => {
      const b = request.body;
      const { issuedType, resourceUrl } = checkExchangeRequest(b);
      const services = node.services();
      const principal = await services.authenticator
        .authenticateTask(b.subject_token, {
          method: request.method,
          url: requestUrl(request, services.issuer),
          ...(typeof request.headers.dpop === 'string' ? { dpop: request.headers.dpop } : {}),
        })
        .catch((error: unknown) => {
          // The subject token is this route's credential: a refused one is recorded by HMAC, as everywhere.
          request.auditCredential = services.auditHmac(b.subject_token);
          throw error;
        });
      request.auth = principal;
      authorizeDelegation(request, node, principal.task);
      const target = resourceUrl === undefined ? undefined : await exchangeResource(request, node, resourceUrl);
      const scope = target ? resourceScope(target, b.scope) : b.scope;
      const issued = await services.tasks.delegate(
        principal.task,
        {
          ...(scope ? { scope } : {}),
          ...(target ? { audience: target.url } : {}),
          ...(b.ttl ? { ttlMs: parseDuration(b.ttl) } : {}),
          ...(b.dpop_jkt ? { jkt: b.dpop_jkt } : {}),
        },
        principal.role,
      );
      request.auditIssuedTask = issued.task.id;
      if (target) request.auditAudience = target.url;
      return {
        access_token: issued.token,
        issued_token_type: issuedType,
        token_type: issued.task.jkt ? 'DPoP' : 'Bearer',
        expires_in: Math.max(0, Math.floor((Date.parse(issued.task.expire_time) - Date.now()) / 1000)),
        scope: issued.task.scope,
        task_id: issued.task.id,
        accessor: issued.task.accessor,
        ...(target ? { aud: target.url } : {}),
      };
    },
  });
}

/**
 * Refuses, before the subject token is even looked at, every part of an
 * exchange custos would otherwise have to ignore: a client that asks for a
 * token for `billing-api`, or on behalf of an actor, and silently gets an
 * ordinary custos task token might hand it somewhere it should not go. Each
 * refusal names the parameter, never its value. Returns the token type to
 * report as issued, and the canonical form of the `resource` asked for.
 */
function checkExchangeRequest(b: ExchangeBody): { issuedType: string; resourceUrl?: string } {
  const unsupported = (oauthError: string, detail: string) =>
    new OAuthRequestError(oauthError, 'CUSTOS_ERR_UNSUPPORTED_PARAMETER', detail);
  if (b.grant_type !== TOKEN_EXCHANGE) {
    throw unsupported('unsupported_grant_type', `grant_type: only ${TOKEN_EXCHANGE} is supported.`);
  }
  if (!TASK_TOKEN_TYPES.includes(b.subject_token_type)) {
    throw unsupported('invalid_request', 'subject_token_type: the subject token must be a custos task token (jwt).');
  }
  if (b.requested_token_type !== undefined && !TASK_TOKEN_TYPES.includes(b.requested_token_type)) {
    throw unsupported('invalid_request', 'requested_token_type: custos issues task tokens (jwt) only.');
  }
  if (b.actor_token !== undefined || b.actor_token_type !== undefined) {
    // The child's `act` claim is built from the subject token's own task
    // chain; a second party cannot be named by presenting its token.
    throw unsupported('invalid_request', 'actor_token: actor tokens are not supported.');
  }
  const audiences = b.audience === undefined ? [] : Array.isArray(b.audience) ? b.audience : [b.audience];
  if (audiences.some((a) => a !== TASK_TOKEN_AUDIENCE)) {
    throw unsupported('invalid_target', `audience: task tokens are issued for "${TASK_TOKEN_AUDIENCE}" only.`);
  }
  const issuedType = b.requested_token_type ?? JWT_TYPE;
  if (b.resource === undefined) return { issuedType };
  // One resource per token. RFC 8707 lets a client name several, for a
  // token whose `aud` lists them all — but every one of those servers could
  // then replay the token at the others. One audience keeps a token for A
  // useless at B; a client that needs both asks twice.
  if (Array.isArray(b.resource) && b.resource.length > 1) {
    throw unsupported('invalid_target', 'resource: one resource per exchange.');
  }
  // A token for a resource is for it alone: `audience=custos` beside it would
  // ask for a token custos accepts too, which is what a resource token must
  // not be (custos would then honour a token the resource server received).
  if (b.audience !== undefined) {
    throw unsupported('invalid_target', 'audience: not with resource; a resource token is for the resource alone.');
  }
  const written = Array.isArray(b.resource) ? (b.resource[0] as string) : b.resource;
  try {
    return { issuedType, resourceUrl: canonicalResourceUrl(written) };
  } catch (error) {
    // The rule broken (fragment, userinfo, …), never the value.
    throw unsupported('invalid_target', `resource: ${error instanceof ResourceUrlError ? error.rule : 'malformed.'}`);
  }
}

/**
 * The registered resource a live task asked a token for, if it may `use`
 * it (its scope and its role's policies, on `resource/<name>`). Looked up
 * only after the subject token was verified, so an anonymous caller learns
 * nothing about what is registered; and an unknown resource and one the
 * task may not use get the same answer, so a task learns no more either
 * (the audit event tells them apart).
 */
async function exchangeResource(request: FastifyRequest, node: CustosNode, url: string): Promise<ResourceRecord> {
  const services = node.services();
  const refused = (reason: string) => {
    request.auditReason = reason;
    return new OAuthRequestError(
      'invalid_target',
      'CUSTOS_ERR_UNSUPPORTED_PARAMETER',
      'resource: not a registered resource this task may use.',
    );
  };
  const found = await services.resources.findByUrl(url);
  if (!found) throw refused('resource_not_registered');
  const principal = request.auth;
  const allowed =
    principal != null &&
    services.authorize(principal, 'use', resourceUseResource(found.name), { sourceIp: request.ip, now: new Date() })
      .allowed;
  if (!allowed) {
    request.decision = 'deny';
    throw refused('resource_use_denied');
  }
  return found;
}

/**
 * The child's scope for a resource: what the client asked, or by default
 * the resource's registered scopes — and when the resource has scopes,
 * within them (a token for the GitHub MCP server carries no `read:kv/…`
 * entry it could be used for elsewhere). The parent's bound is checked
 * after this, by the delegation itself.
 */
function resourceScope(target: ResourceRecord, asked: string | undefined): string | undefined {
  if (target.scopes.length === 0) return asked;
  const scope = asked ?? target.scopes.join(' ');
  if (!isScopeSubset(parseScope(scope), parseScope(target.scopes.join(' ')))) {
    throw new OAuthRequestError('invalid_scope', 'CUSTOS_ERR_SCOPE_EXCEEDS_RESOURCE');
  }
  return scope;
}

function introspectionRoute(app: FastifyInstance, node: CustosNode): void {
  app.post<{ Body: { token: string; token_type_hint?: string } }>('/oauth/introspect', {
    // RFC 7662 §2.1: the caller must be authorised; any valid custos token is
    // (it learns no more than the token's own claims and whether it is live).
    config: { access: { kind: 'self' } },
    schema: {
      tags: ['oauth'],
      summary: 'RFC 7662 introspection: active false for revoked, ended, expired or forged tokens',
      description:
        'The caller authenticates with its own custos token under the `Bearer` or `DPoP` scheme (the RFC 8414 ' +
        'metadata lists them as `introspection_endpoint_auth_methods_supported`); without one the answer is 401 ' +
        'with a `WWW-Authenticate` challenge.',
      consumes: CONSUMES,
      body: {
        type: 'object',
        properties: { token: text(8192), token_type_hint: text(64) },
        required: ['token'],
      },
      response: { 200: introspectionResponseSchema, '4xx': oauthErrorSchema },
    },
    handler: async (request) => {
      try {
        const services = node.services();
        // Introspection answers for bearer use: a DPoP-bound token is reported
        // with its cnf, and the resource server checks the proof itself.
        // A token minted for a registered resource is introspected too: that
        // resource's server is the one asking. `aud` is reported, and the
        // resource server must check it is its own (RFC 7662 §4). A token
        // for a resource since deleted is inactive. The registered URLs are
        // read only for a token that is not custos's own (its signature
        // check is cached, so the second verification costs little).
        const context = { method: 'POST', url: 'introspection', allowUnproven: true };
        const task = await services.authenticator.verifyTaskToken(request.body.token, context).catch(async (error) => {
          if (!(error instanceof TaskTokenInvalidError && error.auditReason === 'wrong_audience')) throw error;
          const alsoAudiences = await services.resources.urls();
          return services.authenticator.verifyTaskToken(request.body.token, { ...context, alsoAudiences });
        });
        // Just-in-time elevations in force for the task (docs/jit.md), read as authorization reads them.
        const elevations = await services.requests.elevations.forChain(task.chain);
        return {
          active: true,
          token_type: task.jkt ? 'DPoP' : 'Bearer',
          sub: task.sub,
          scope: task.scope,
          exp: task.exp,
          iss: services.issuer,
          ...(task.aud !== undefined ? { aud: task.aud } : {}),
          task_id: task.task_id,
          parent_task_id: task.parent_task_id,
          role: task.role,
          depth: task.depth,
          task_chain: task.chain,
          ...(task.act ? { act: task.act } : {}),
          ...(task.jkt ? { cnf: { jkt: task.jkt } } : {}),
          ...(elevations.length > 0
            ? {
                elevations: elevations.map((e) => ({
                  scope: e.scope,
                  expires_at: Math.floor(e.expires_at / 1000),
                  request_id: e.request_id,
                  ...(e.task_id !== task.task_id ? { from_task: e.task_id } : {}),
                })),
              }
            : {}),
        };
      } catch (error) {
        if (isCustosError(error) && error.code === 'CUSTOS_ERR_UNAUTHENTICATED') return { active: false };
        throw error;
      }
    },
  });
}
