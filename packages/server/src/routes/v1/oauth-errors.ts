import { CustosError, type ErrorCode, IdentityRejectedError, TaskTokenInvalidError } from '@custos/core';

/**
 * A refusal the OAuth endpoints name with a specific OAuth error code (an
 * unsupported grant type, parameter or target) besides its custos code.
 */
export class OAuthRequestError extends CustosError {
  readonly oauthError: string;

  constructor(oauthError: string, code: ErrorCode, detail?: string) {
    super(code, detail);
    this.name = 'OAuthRequestError';
    this.oauthError = oauthError;
  }
}

/** An OAuth error response: the RFC 6749 §5.2 members, and the custos code beside them. */
export interface OAuthErrorResponse {
  status: number;
  body: { error: string; error_description: string; custos_code: ErrorCode };
}

/**
 * Statuses that describe the HTTP exchange rather than the OAuth request
 * (body too large, wrong media type, too many requests, and every 5xx): they
 * keep their status, so that generic HTTP clients back off or retry as usual.
 */
const transportStatus = (status: number) => status === 413 || status === 415 || status === 429 || status >= 500;

/**
 * The token endpoint's answer to an error (RFC 6749 §5.2): 400 with an
 * OAuth error code for every refusal of the request. RFC 8693 §2.2.2 asks
 * `invalid_request` for a subject token that is invalid "for any reason" or
 * "unacceptable based on policy" (a revoked, forged or expired task token, a
 * task whose slice does not allow delegation), `invalid_scope` for a scope
 * wider than the parent's, and `invalid_target` for an audience or resource
 * custos cannot issue for; RFC 9449 §5 asks `invalid_dpop_proof` for a
 * missing or bad DPoP proof of a sender-constrained subject token. No 401
 * arises: the endpoint takes no client authentication (`none`), so there is
 * no `invalid_client`.
 */
export function tokenEndpointError(error: unknown, custos: CustosError): OAuthErrorResponse {
  if (transportStatus(custos.status)) {
    return response(custos.status, custos.status >= 500 ? 'server_error' : 'invalid_request', custos);
  }
  return response(400, tokenError(error, custos), custos);
}

function tokenError(error: unknown, custos: CustosError): string {
  if (error instanceof OAuthRequestError) return error.oauthError;
  if (error instanceof IdentityRejectedError && error.method === 'dpop') return 'invalid_dpop_proof';
  if (
    error instanceof TaskTokenInvalidError &&
    (error.auditReason === 'dpop_proof_required' || error.auditReason === 'dpop_key_mismatch')
  ) {
    return 'invalid_dpop_proof';
  }
  if (custos.code === 'CUSTOS_ERR_SCOPE_EXCEEDS_PARENT') return 'invalid_scope';
  if (custos.code === 'CUSTOS_ERR_DPOP_REQUIRED') return 'invalid_dpop_proof';
  return 'invalid_request';
}

/**
 * The introspection endpoint's answer to an error. Its caller authenticates
 * with a bearer (or DPoP) token, so RFC 7662 §2.3 sends a missing or invalid
 * caller token to RFC 6750 §3: 401 `invalid_token` (the `WWW-Authenticate`
 * challenge is added for every 401 by the response-headers plugin). A bad
 * request is 400 `invalid_request`.
 */
export function introspectionError(error: unknown, custos: CustosError): OAuthErrorResponse {
  if (error instanceof OAuthRequestError) return response(400, error.oauthError, custos);
  if (transportStatus(custos.status)) {
    return response(custos.status, custos.status >= 500 ? 'server_error' : 'invalid_request', custos);
  }
  if (custos.status === 401) return response(401, 'invalid_token', custos);
  if (custos.status === 403) return response(403, 'insufficient_scope', custos);
  return response(400, 'invalid_request', custos);
}

const response = (status: number, error: string, custos: CustosError): OAuthErrorResponse => ({
  status,
  body: { error, error_description: custos.message, custos_code: custos.code },
});
