import type { IncomingMessage, ServerResponse } from 'node:http';
import { CustosSdkError, CustosUsageError, InsufficientScopeError, TaskTokenInvalidError } from '../custos-errors.js';
import { RemoteJwks } from './remote-jwks.js';
import { type VerifiedTask, type VerifyTaskTokenOptions, verifyTaskToken } from './verify-task-token.js';

/** The request as the middleware sees it (fastify's and Node's both fit). */
export interface AuthRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Options of {@link custosAuth}. */
export interface CustosAuthOptions extends Omit<VerifyTaskTokenOptions, 'requiredScope' | 'dpopJkt' | 'now'> {
  /** What every request needs, or a function choosing it per request (undefined: any valid task token). */
  readonly requiredScope?: string | ((request: AuthRequest) => string | undefined);
  /** The `realm` of the `WWW-Authenticate` challenge. Default `custos`. */
  readonly realm?: string;
  /**
   * The URL of this resource's RFC 9728 metadata (`protectedResourceMetadata(…).url`):
   * every 401 challenge then carries `resource_metadata="…"` (RFC 9728
   * §5.1), so a client learns where to get a token for this resource.
   */
  readonly resourceMetadata?: string;
}

/** Structural types of what the middleware touches in fastify: no dependency on it. */
interface FastifyLike {
  addHook(name: 'onRequest', hook: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>): unknown;
  decorateRequest(name: string, value: unknown): unknown;
  hasRequestDecorator(name: string): boolean;
}
interface FastifyRequestLike extends AuthRequest {
  custosTask?: VerifiedTask | null;
}
interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(body: unknown): FastifyReplyLike;
}

/** The middleware: a fastify plugin (`app.register(auth)`) and an Express/Connect handler (`app.use(auth)`). */
export interface CustosAuthMiddleware {
  (instance: FastifyLike, options: unknown, done: (error?: Error) => void): void;
  (
    request: IncomingMessage & { custosTask?: VerifiedTask },
    response: ServerResponse,
    next: (error?: unknown) => void,
  ): void;
}

declare module 'node:http' {
  interface IncomingMessage {
    /** Set by {@link custosAuth} once the request's task token is verified. */
    custosTask?: VerifiedTask;
  }
}

/** A refusal: its status, the `WWW-Authenticate` challenge if any, and the custos-shaped body. */
interface Refusal {
  status: number;
  challenge?: string;
  body: { error: { code: string; message: string } };
}

/**
 * Accepts only requests carrying a valid custos task token in
 * `Authorization: Bearer`, verified offline ({@link verifyTaskToken}), and
 * puts the verified task on the request as `request.custosTask`.
 *
 * - No token: 401 with `WWW-Authenticate: Bearer realm="custos"` (RFC 6750 §3).
 * - A token that fails verification: 401, `error="invalid_token"`; why is
 *   not said (the reason is on the thrown error, for a tool's own log).
 * - A valid token whose scope does not cover `requiredScope`: 403,
 *   `error="insufficient_scope"` with the scope required.
 * - custos's keys cannot be fetched and none are cached: 503, no challenge.
 * - **A DPoP-bound token is refused**, under either scheme: RFC 9449 binds it
 *   to a key whose proof must accompany every request, and this middleware
 *   does not verify DPoP proofs (htm/htu, freshness, replay, `ath`). Taking
 *   it as a bearer token would throw away exactly the protection its holder
 *   asked for — a stolen bound token would work here. Tools that serve
 *   DPoP-bound agents verify the proof themselves and call
 *   {@link verifyTaskToken} with its `dpopJkt`.
 *
 * Refusals use custos's error shape `{ error: { code, message } }` and
 * `Cache-Control: no-store`.
 *
 * @example
 * ```ts
 * app.register(custosAuth({ issuer: 'https://custos.internal', requiredScope: 'read:kv/team/db' })); // fastify
 * app.use(custosAuth({ issuer: 'https://custos.internal' })); // Express, Connect
 * ```
 */
export function custosAuth(options: CustosAuthOptions): CustosAuthMiddleware {
  const { requiredScope, realm = 'custos', resourceMetadata, ...verifyOptions } = options;
  if (typeof verifyOptions.issuer !== 'string' || verifyOptions.issuer.length === 0) {
    throw new CustosUsageError('issuer: custos’s issuer URL is required');
  }
  if (/["\\\r\n]/.test(realm)) throw new CustosUsageError('realm: no quotes, backslashes or line breaks');
  if (resourceMetadata !== undefined && !/^https?:\/\/[\x21\x23-\x5B\x5D-\x7E]+$/.test(resourceMetadata)) {
    throw new CustosUsageError('resourceMetadata: an http(s) URL without quotes, backslashes or spaces');
  }
  // RFC 9728 §5.1: on every 401, so a client without a token learns where to get one.
  const metadataParam = resourceMetadata === undefined ? '' : `, resource_metadata="${resourceMetadata}"`;
  // One key set for every request this middleware sees.
  const jwks =
    verifyOptions.jwks ??
    new RemoteJwks(verifyOptions.jwksUrl ?? `${verifyOptions.issuer.replace(/\/+$/, '')}/.well-known/jwks.json`);

  const authenticate = async (request: AuthRequest): Promise<{ task: VerifiedTask } | { refusal: Refusal }> => {
    const credentials = bearerToken(request.headers.authorization);
    if (credentials.kind === 'none') {
      return { refusal: refusal(401, 'CUSTOS_ERR_UNAUTHENTICATED', `Bearer realm="${realm}"${metadataParam}`) };
    }
    if (credentials.kind === 'unsupported') {
      return {
        refusal: refusal(
          401,
          'CUSTOS_ERR_UNAUTHENTICATED',
          `Bearer realm="${realm}", error="invalid_token", error_description="only unbound task tokens, as Bearer"${metadataParam}`,
        ),
      };
    }
    const scope = typeof requiredScope === 'function' ? requiredScope(request) : requiredScope;
    try {
      const task = await verifyTaskToken(credentials.token, {
        ...verifyOptions,
        jwks,
        ...(scope !== undefined ? { requiredScope: scope } : {}),
      });
      return { task };
    } catch (error) {
      if (error instanceof TaskTokenInvalidError) {
        return { refusal: refusal(401, error.code, `Bearer realm="${realm}", error="invalid_token"${metadataParam}`) };
      }
      if (error instanceof InsufficientScopeError) {
        // The scope goes into the challenge only in RFC 6750's scope syntax:
        // one chosen per request may come from its URL, and must not break
        // the header's quoting.
        const named = SCOPE_SYNTAX.test(error.requiredScope) ? `, scope="${error.requiredScope}"` : '';
        return { refusal: refusal(403, error.code, `Bearer realm="${realm}", error="insufficient_scope"${named}`) };
      }
      if (error instanceof CustosUsageError && typeof requiredScope === 'function') {
        // A scope chosen from the request (its path, say) that is no valid
        // scope — `..`, `//`, a control character — grants nothing.
        return {
          refusal: refusal(403, 'CUSTOS_ERR_PERMISSION_DENIED', `Bearer realm="${realm}", error="insufficient_scope"`),
        };
      }
      if (error instanceof CustosSdkError && !(error instanceof CustosUsageError)) {
        return { refusal: refusal(503, error.code) }; // custos's keys are out of reach
      }
      throw error;
    }
  };

  function middleware(first: unknown, second: unknown, third: unknown): void {
    if (isFastify(first)) {
      registerFastify(first, authenticate);
      (third as (error?: Error) => void)();
      return;
    }
    const request = first as IncomingMessage;
    const response = second as ServerResponse;
    const next = third as (error?: unknown) => void;
    authenticate(request).then((outcome) => {
      if ('task' in outcome) {
        request.custosTask = outcome.task;
        next();
        return;
      }
      const { status, challenge, body } = outcome.refusal;
      response.statusCode = status;
      response.setHeader('content-type', 'application/json; charset=utf-8');
      response.setHeader('cache-control', 'no-store');
      if (challenge !== undefined) response.setHeader('www-authenticate', challenge);
      response.end(JSON.stringify(body));
    }, next);
  }
  // As fastify-plugin does: the hook applies to the routes of the scope that
  // registers it, not only to an encapsulated child scope of its own.
  Object.assign(middleware, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'custos-auth',
  });
  return middleware as CustosAuthMiddleware;
}

function registerFastify(
  app: FastifyLike,
  authenticate: (request: AuthRequest) => Promise<{ task: VerifiedTask } | { refusal: Refusal }>,
): void {
  if (!app.hasRequestDecorator('custosTask')) app.decorateRequest('custosTask', null);
  app.addHook('onRequest', async (request, reply) => {
    const outcome = await authenticate(request);
    if ('task' in outcome) {
      request.custosTask = outcome.task;
      return;
    }
    const { status, challenge, body } = outcome.refusal;
    reply.code(status).header('cache-control', 'no-store');
    if (challenge !== undefined) reply.header('www-authenticate', challenge);
    return reply.send(body);
  });
}

/** RFC 6750 §3: `scope = scope-token *( SP scope-token )`, scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_SYNTAX = /^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$/;

type Credentials = { kind: 'none' } | { kind: 'unsupported' } | { kind: 'bearer'; token: string };

/**
 * The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC
 * 7235). Any other scheme — `DPoP` above all — is unsupported, never read
 * as a bearer token.
 */
function bearerToken(header: string | string[] | undefined): Credentials {
  if (header === undefined || header === '') return { kind: 'none' };
  if (typeof header !== 'string') return { kind: 'unsupported' };
  const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header);
  return match?.[1] ? { kind: 'bearer', token: match[1] } : { kind: 'unsupported' };
}

const MESSAGES: Record<string, string> = {
  CUSTOS_ERR_UNAUTHENTICATED: 'Authentication is required or the token is not valid.',
  CUSTOS_ERR_PERMISSION_DENIED: 'Permission denied.',
};

function refusal(status: number, code: string, challenge?: string): Refusal {
  return {
    status,
    ...(challenge !== undefined ? { challenge } : {}),
    body: { error: { code, message: MESSAGES[code] ?? 'custos cannot be reached to verify the token.' } },
  };
}

function isFastify(value: unknown): value is FastifyLike {
  const v = value as Partial<FastifyLike> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.addHook === 'function' &&
    typeof v.decorateRequest === 'function' &&
    typeof v.hasRequestDecorator === 'function'
  );
}
