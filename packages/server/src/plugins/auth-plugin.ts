import {
  CustosError,
  type CustosNode,
  type CustosServices,
  PermissionDeniedError,
  type Principal,
  UnauthenticatedError,
} from '@custos/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type RequestCredential, refuseCredential, requestCredential } from './request-credentials.js';

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
  app.decorateRequest('auditAudience', null);
  app.decorateRequest('auditIdentity', null);
  app.decorateRequest('auditElevation', null);
  app.decorateRequest('auditSource', null);
  app.decorateRequest('auditRefusedTask', null);
  app.decorateRequest('auditCredential', null);
  app.decorateRequest('auditedRequest', false);

  app.addHook('onRequest', async (request) => {
    if (request.is404) return;
    const config = request.routeOptions.config;
    // A sealed server answers only what is needed to unseal it.
    if (node.sealed && !config.whileSealed) throw node.sealedError();
    const access = config.access;
    if (!access) throw new CustosError('CUSTOS_ERR_INTERNAL');
    if (access.kind === 'public') return;

    const credential = requestCredential(request);
    if (!credential) throw new UnauthenticatedError();
    const services = node.services();
    let principal: Principal;
    try {
      principal = await authenticate(services, credential, request);
    } catch (error) {
      // Every refused credential is recorded by its HMAC (never in clear):
      // a token presented that custos never issued — a planted honeytoken
      // among them — is then recognisable in the trail by fingerprint alone.
      request.auditCredential = services.auditHmac(credential.token);
      throw error;
    }
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
    // Allowed only by an approved elevation: the trail names the request, so the use is tied to its approval.
    const elevation = decision.reasons.find((r) => r.startsWith('elevation:'));
    if (elevation) request.auditElevation = elevation.slice('elevation:'.length);
  });
}

/**
 * The principal a credential stands for, under the scheme it was presented
 * with (RFC 9449 §7.1):
 * - `Bearer` and `X-Custos-Token`: the token alone. A `DPoP` header is not
 *   looked at, so a DPoP-bound token fails its binding check here even when a
 *   valid proof rides along: a bound token is never a bearer token.
 * - `DPoP`: exactly one proof, verified for this method, URL and token, and
 *   a token bound to the proof's key. An unbound task token or an operator
 *   token under this scheme is refused: the scheme claims a sender
 *   constraint the token does not have, which is either a broken client or
 *   a confusion attempt, and accepting it would teach clients that the
 *   scheme means nothing.
 */
async function authenticate(
  services: CustosServices,
  credential: RequestCredential,
  request: FastifyRequest,
): Promise<Principal> {
  const context = { method: request.method, url: requestUrl(request, services.issuer) };
  if (credential.scheme !== 'dpop') return services.authenticate(credential.token, context);
  // Two DPoP headers arrive joined into one string and fail as malformed.
  const proof = request.headers.dpop;
  if (typeof proof !== 'string' || proof === '') throw refuseCredential('dpop_proof_missing');
  const principal = await services.authenticate(credential.token, { ...context, dpop: proof });
  if (principal.kind !== 'task') throw refuseCredential('dpop_scheme_operator_token');
  if (principal.task.jkt === null) throw refuseCredential('dpop_scheme_unbound_token');
  return principal;
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
