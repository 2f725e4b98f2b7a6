import { errors as joseErrors } from 'jose';
import { KeySetUnavailable } from './jwt-key-set.js';

/** Why a federated JWT was refused; written to the audit log, never sent to the client. */
export type JwtRejectReason =
  | 'malformed'
  | 'too_large'
  | 'algorithm_not_allowed'
  | 'unknown_key'
  | 'ambiguous_key'
  | 'bad_signature'
  | 'jwks_unavailable'
  | 'expired'
  | 'too_old'
  | 'not_yet_valid'
  | 'issued_in_future'
  | 'issuer_mismatch'
  | 'audience_mismatch'
  | 'missing_claim'
  | 'subject_mismatch'
  /** The `sub` is longer than a task identity may be (MAX_JWT_SUBJECT_BYTES). */
  | 'subject_too_long'
  | 'bound_claim_mismatch'
  /** A claim the method maps to a label holds no plain value (an object, a list, too long). */
  | 'claim_label_unusable'
  /** The method maps a claim to a label key the role does not let be granted (`grantable_labels`). */
  | 'claim_label_not_grantable'
  /** The role names no JWT method (a role stored before roles had to). */
  | 'role_names_no_jwt_method'
  | 'internal';

/** Maps a jose (or key-set) failure to a fixed audit reason. */
export function jwtRejectReason(e: unknown): JwtRejectReason {
  if (e instanceof KeySetUnavailable) return 'jwks_unavailable';
  if (e instanceof joseErrors.JWTExpired) return e.claim === 'iat' ? 'too_old' : 'expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.reason === 'missing') return 'missing_claim';
    switch (e.claim) {
      case 'nbf':
        return 'not_yet_valid';
      case 'iat':
        return 'issued_in_future';
      case 'iss':
        return 'issuer_mismatch';
      case 'aud':
        return 'audience_mismatch';
      case 'sub':
        return 'subject_mismatch';
      default:
        return 'malformed';
    }
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm_not_allowed';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'unknown_key';
  if (e instanceof joseErrors.JWKSMultipleMatchingKeys) return 'ambiguous_key';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (e instanceof joseErrors.JOSEError || e instanceof TypeError) return 'malformed';
  return 'internal';
}
