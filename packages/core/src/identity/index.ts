export * from './identity-rejected-error.js';
export * from './jwt-auth-config.js';
export * from './jwt-auth-method.js';
export * from './jwt-bound-claims.js';
export type { JwksFetchOptions } from './jwt-key-set.js';
export type { JwtRejectReason } from './jwt-reject-reason.js';
