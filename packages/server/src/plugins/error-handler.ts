import { CustosError, type ErrorCode, isCustosError, refusedTaskSubject } from '@custos/core';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Maps fastify's own failures to custos codes. Anything not listed becomes
 * CUSTOS_ERR_INTERNAL: its message, stack and cause go to the log (through the
 * redacting logger), never to the client.
 */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'CUSTOS_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'CUSTOS_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'CUSTOS_ERR_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'CUSTOS_ERR_BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'CUSTOS_ERR_BAD_REQUEST',
  FST_ERR_BAD_URL: 'CUSTOS_ERR_BAD_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'CUSTOS_ERR_BAD_REQUEST',
};

/** Turns any thrown value into the custos error that is answered. */
export function toCustosError(error: unknown): CustosError {
  if (isCustosError(error)) return error;
  const e = error as Partial<FastifyError> & { validation?: unknown };
  if (e?.validation) {
    // Fastify's validation messages name the offending property and rule, not
    // its value, so they are safe and useful to return.
    return new CustosError(
      'CUSTOS_ERR_VALIDATION',
      typeof e.message === 'string' ? e.message.slice(0, 200) : undefined,
    );
  }
  if (e?.code && FASTIFY_CODES[e.code]) return new CustosError(FASTIFY_CODES[e.code] as ErrorCode);
  if (e instanceof SyntaxError) return new CustosError('CUSTOS_ERR_BAD_REQUEST');
  if (e?.statusCode === 429) return new CustosError('CUSTOS_ERR_RATE_LIMITED');
  if (e?.statusCode === 405) return new CustosError('CUSTOS_ERR_METHOD_NOT_ALLOWED');
  return new CustosError('CUSTOS_ERR_INTERNAL');
}

/**
 * What every error response does before it is shaped: the custos error to
 * answer, recorded on the request for the audit event (its code and, for
 * refused identities, the reason), and logged when it is not an expected
 * refusal. Shared by the OAuth endpoints, which shape their errors as
 * RFC 6749 wants but must not skip this.
 */
export function noteError(error: unknown, request: FastifyRequest): CustosError {
  const custos = toCustosError(error);
  request.errorCode = custos.code;
  const auditReason = (error as { auditReason?: unknown })?.auditReason;
  if (typeof auditReason === 'string') request.auditReason = auditReason.slice(0, 64);
  request.auditRefusedTask = refusedTaskSubject(error) ?? null;
  if (custos.code === 'CUSTOS_ERR_INTERNAL') {
    // An unexpected failure: log the original (message and stack) for
    // operators; the client sees only the code and a fixed message.
    request.log.error({ err: error, code: custos.code }, 'request failed');
  } else if (custos.status >= 500) {
    // A known condition (sealed, storage or audit unavailable): the code
    // says it all, and a stack would only be noise.
    request.log.warn({ code: custos.code }, 'request refused');
  }
  return custos;
}

/** The one place errors become HTTP responses: `{ error: { code, message } }`. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const custos = noteError(error, request);
    return reply.code(custos.status).send({ error: custos.toJSON() });
  });

  app.setNotFoundHandler((request, reply) => {
    const custos = new CustosError('CUSTOS_ERR_ROUTE_NOT_FOUND');
    request.errorCode = custos.code;
    return reply.code(custos.status).send({ error: custos.toJSON() });
  });
}
