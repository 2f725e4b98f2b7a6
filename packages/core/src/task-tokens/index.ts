export { actChain, actorSubjects, delegationActor } from './task-act-chain.js';
export {
  DEFAULT_KEY_REFRESH_INTERVAL_MS,
  DEFAULT_MIN_KEY_RELOAD_INTERVAL_MS,
  ed25519Thumbprint,
  type RotateTaskSigningKeyOptions,
  type TaskJwk,
  type TaskJwks,
  type TaskSigningKey,
  TaskSigningKeys,
  type TaskSigningKeysOptions,
} from './task-signing-keys.js';
export {
  MAX_TASK_DEPTH,
  MAX_TASK_TOKEN_LENGTH,
  TASK_TOKEN_TYP,
  type TaskActor,
  type TaskTokenClaims,
  type TaskTokenInput,
} from './task-token-claims.js';
export {
  type RefusedTaskSubject,
  refusedTaskSubject,
  TaskInactiveError,
  TaskTokenInvalidError,
  type TaskTokenRefusal,
} from './task-token-error.js';
export { type ClampExpiryInput, clampExpiry, MIN_TASK_TTL_MS } from './task-token-expiry.js';
export { type IssuedTaskToken, type IssueTaskTokenOptions, issueTaskToken } from './task-token-issue.js';
export {
  DEFAULT_TASK_TOKEN_CLOCK_TOLERANCE_SEC,
  type VerifyTaskTokenOptions,
  verifyTaskToken,
} from './task-token-verify.js';
export {
  DEFAULT_VERIFY_CACHE_ENTRIES,
  type VerifiedTaskToken,
  VerifiedTaskTokenCache,
} from './task-token-verify-cache.js';
