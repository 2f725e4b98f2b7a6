import { UnauthenticatedError } from '../errors/index.js';

/** Which secure-introduction mechanism refused the caller. */
export type IdentityMethod = 'jwt' | 'cert' | 'dpop' | 'aws';

/**
 * An identity proof (federated JWT, client certificate, DPoP proof) was refused.
 *
 * To the client this is exactly an {@link UnauthenticatedError}: same code,
 * same fixed message, same `toJSON()`. Telling an attacker *which* check failed
 * (expired vs. unknown key vs. wrong audience) helps them tune a forgery, so
 * the reason travels only in `auditReason`, a short fixed token
 * (`'expired'`, `'bad_signature'`, …) meant for the audit log. It never carries
 * token contents, claim values or library messages, and no `cause` is attached
 * (library messages quote claim values).
 *
 * @example
 * ```ts
 * try {
 *   await verifyWorkloadJwt(config, token, {});
 * } catch (e) {
 *   if (e instanceof IdentityRejectedError) audit({ decision: 'deny', reason: e.auditReason });
 *   throw e; // the error handler sends only CUSTOS_ERR_UNAUTHENTICATED
 * }
 * ```
 */
export class IdentityRejectedError<R extends string = string> extends UnauthenticatedError {
  readonly method: IdentityMethod;
  readonly auditReason: R;

  constructor(method: IdentityMethod, auditReason: R) {
    super();
    this.name = 'IdentityRejectedError';
    this.method = method;
    this.auditReason = auditReason;
  }
}
