import { IdentityRejectedError } from '@custos/core';
import type { FastifyRequest } from 'fastify';

/**
 * How the caller presented its token. The scheme is part of the credential:
 * `dpop` promises a sender-constrained token and a proof of its key
 * (RFC 9449), `bearer` and the `X-Custos-Token` header promise a token that
 * works alone. Each token is accepted only under the scheme it was issued
 * for, so a captured DPoP-bound token cannot be replayed as a bearer token
 * next to some other proof, and an unbound token cannot pose as a
 * sender-constrained one.
 */
export type CredentialScheme = 'bearer' | 'dpop' | 'x-custos-token';

export interface RequestCredential {
  readonly scheme: CredentialScheme;
  readonly token: string;
}

/**
 * Why a presented credential was refused before (or after) its token was
 * checked: for the audit event only. To the client it is the ordinary
 * CUSTOS_ERR_UNAUTHENTICATED.
 */
export type CredentialRefusal =
  | 'ambiguous_credentials'
  | 'dpop_proof_missing'
  | 'dpop_scheme_unbound_token'
  | 'dpop_scheme_operator_token';

export const refuseCredential = (reason: CredentialRefusal) => new IdentityRejectedError('dpop', reason);

/**
 * The token a request carries and its scheme, or `undefined` when it carries
 * none. `Authorization: Bearer …` and `Authorization: DPoP …` (scheme names
 * are case-insensitive, RFC 9110 §11.1), else `X-Custos-Token`.
 *
 * A request that carries a token both ways is refused rather than one of
 * them picked (RFC 6750 §2: one method per request): a proxy, a log filter or
 * a policy in front of custos could otherwise look at one credential while
 * custos acts on the other.
 */
export function requestCredential(request: FastifyRequest): RequestCredential | undefined {
  const fromAuthorization = authorizationCredential(request.headers.authorization);
  const alt = request.headers['x-custos-token'];
  const fromHeader = typeof alt === 'string' && alt.trim() !== '' ? alt.trim() : undefined;
  if (fromAuthorization && fromHeader !== undefined) throw refuseCredential('ambiguous_credentials');
  if (fromAuthorization) return fromAuthorization;
  return fromHeader === undefined ? undefined : { scheme: 'x-custos-token', token: fromHeader };
}

function authorizationCredential(header: string | undefined): RequestCredential | undefined {
  if (typeof header !== 'string') return undefined;
  const match = /^([A-Za-z]+) +(\S+) *$/.exec(header);
  if (!match) return undefined;
  const scheme = (match[1] as string).toLowerCase();
  if (scheme === 'bearer') return { scheme: 'bearer', token: match[2] as string };
  if (scheme === 'dpop') return { scheme: 'dpop', token: match[2] as string };
  // Another scheme (Basic, …) is not a custos credential.
  return undefined;
}
