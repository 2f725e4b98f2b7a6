import { CustosError, type CustosNode, PermissionDeniedError, SealedError, UnauthenticatedError } from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Authentication and authorisation for every route, in one hook.
 *
 * It runs at `onRequest`, before the body is even parsed, so an
 * unauthenticated caller costs nothing and learns nothing about body schemas.
 * A route that declares no `access` is refused: forgetting to think about
 * access is a bug that must fail closed, not open.
 */
export function registerAuth(app: FastifyInstance, node: CustosNode): void {
  app.decorateRequest('auth', null);
  app.decorateRequest('decision', null);
  app.decorateRequest('resourcePath', null);
  app.decorateRequest('errorCode', null);
  app.decorateRequest('auditReason', null);
  app.decorateRequest('auditIssuedTask', null);
  app.decorateRequest('auditedRequest', false);

  app.addHook('onRequest', async (request) => {
    if (request.is404) return;
    const config = request.routeOptions.config;
    // A sealed server answers only what is needed to unseal it.
    if (node.sealed && !config.whileSealed) throw new SealedError();
    const access = config.access;
    if (!access) throw new CustosError('CUSTOS_ERR_INTERNAL');
    if (access.kind === 'public') return;

    const services = node.services();
    const principal = await services.authenticate(bearerToken(request), {
      method: request.method,
      url: requestUrl(request, services.issuer),
      ...(typeof request.headers.dpop === 'string' ? { dpop: request.headers.dpop } : {}),
    });
    request.auth = principal;
    if (access.kind === 'self' || access.kind === 'operator-self') {
      if (access.kind === 'operator-self' && principal.kind !== 'operator') {
        request.decision = 'deny';
        throw new PermissionDeniedError();
      }
      request.decision = 'allow';
      return;
    }
    const path = access.resource(request);
    request.resourcePath = path;
    if (access.operatorOnly && principal.kind !== 'operator') {
      request.decision = 'deny';
      throw new PermissionDeniedError();
    }
    const decision = services.authorize(principal, access.action, path, { sourceIp: request.ip, now: new Date() });
    request.decision = decision.allowed ? 'allow' : 'deny';
    if (!decision.allowed) throw new PermissionDeniedError();
  });
}

/** The token from `Authorization: Bearer …` (or `DPoP …`, RFC 9449) or `X-Custos-Token`. */
function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (typeof header === 'string' && header.startsWith('Bearer ')) return header.slice(7).trim();
  if (typeof header === 'string' && header.startsWith('DPoP ')) return header.slice(5).trim();
  const alt = request.headers['x-custos-token'];
  if (typeof alt === 'string') return alt.trim();
  throw new UnauthenticatedError();
}

/**
 * The URL a DPoP proof must name (`htu`): this deployment's configured
 * external base URL (its issuer) and the request path without query. Not
 * the Host header: a client-chosen host must not decide which URL a proof
 * is valid for.
 */
export function requestUrl(request: FastifyRequest, issuer: string): string {
  const path = request.url.split('?')[0] ?? '/';
  return `${issuer.replace(/\/+$/, '')}${path}`;
}
