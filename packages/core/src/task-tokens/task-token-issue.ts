import { randomNonSecretBytes } from '../common/random-pool.js';
import { CustosError, ValidationError } from '../errors/index.js';
import type { TaskSigningKeys } from './task-signing-keys.js';
import {
  actDepth,
  JTI_SHAPE,
  MAX_TASK_DEPTH,
  MAX_TASK_TOKEN_LENGTH,
  type TaskTokenClaims,
  type TaskTokenInput,
  THUMBPRINT_SHAPE,
} from './task-token-claims.js';
import { signCompactJws } from './task-token-jws.js';

export interface IssueTaskTokenOptions {
  readonly keys: Pick<TaskSigningKeys, 'signingKey'>;
  /** This deployment's issuer URL (`iss`). */
  readonly issuer: string;
  /** Who the token is for (`aud`): custos itself and any downstream services. */
  readonly audience: string | readonly string[];
  /** Epoch milliseconds; defaults to Date.now(). */
  readonly now?: number;
}

/** A signed token with the claims it carries (the caller records `jti` and `exp` on the task's lease). */
export interface IssuedTaskToken {
  readonly token: string;
  readonly claims: TaskTokenClaims;
}

/**
 * Signs a task token (compact JWS, EdDSA/Ed25519) with the active signing key.
 *
 * Checks the delegation invariants a verifier relies on: `depth` equals the
 * number of actors in `act`, a root task (depth 0) has no parent and a child
 * has one, and the newest actor is the parent task. TTL limits are not
 * checked here: compute `exp` with {@link clampExpiry}, which refuses what
 * the role or the parent does not allow.
 *
 * @example
 * ```ts
 * const { exp } = clampExpiry({ requestedTtlMs, roleMaxTtlMs, parentExp: parent.exp, now });
 * const { token, claims } = await issueTaskToken(
 *   { sub, task_id, parent_task_id: parent.task_id, depth: parent.depth + 1, role, scope,
 *     act: delegationActor(parent), exp },
 *   { keys, issuer, audience },
 * );
 * ```
 */
export async function issueTaskToken(input: TaskTokenInput, options: IssueTaskTokenOptions): Promise<IssuedTaskToken> {
  const now = options.now ?? Date.now();
  const iat = Math.floor(now / 1000);
  checkInput(input);
  if (!Number.isSafeInteger(input.exp) || input.exp <= iat) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
  const audience = options.audience;
  const aud = typeof audience === 'string' ? audience : [...audience];
  if (aud.length === 0 || options.issuer.length === 0) throw new ValidationError('Issuer and audience are required.');
  // Claim order is fixed so equal inputs give byte-identical payloads.
  const claims: TaskTokenClaims = {
    iss: options.issuer,
    sub: input.sub,
    aud,
    iat,
    nbf: iat,
    exp: input.exp,
    jti: input.jti ?? randomNonSecretBytes(16).toString('base64url'),
    task_id: input.task_id,
    parent_task_id: input.parent_task_id ?? null,
    depth: input.depth,
    role: input.role,
    scope: input.scope,
    ...(input.act === undefined ? {} : { act: input.act }),
    ...(input.cnf === undefined ? {} : { cnf: { jkt: input.cnf.jkt } }),
  };
  const key = await options.keys.signingKey();
  const token = await signCompactJws(key.encodedHeader, claims, key.privateKey);
  // Verifiers refuse longer tokens unread; never hand out one they would refuse.
  if (token.length > MAX_TASK_TOKEN_LENGTH) throw new ValidationError('The task token would be too large.');
  return { token, claims };
}

function checkInput(input: TaskTokenInput): void {
  for (const name of ['sub', 'task_id', 'role'] as const) {
    if (typeof input[name] !== 'string' || input[name].length === 0) throw new ValidationError(`${name} is required.`);
  }
  if (typeof input.scope !== 'string') throw new ValidationError('scope must be a string.');
  if (input.jti !== undefined && !JTI_SHAPE.test(input.jti))
    throw new ValidationError('jti must be 22 base64url characters.');
  if (input.cnf !== undefined && !THUMBPRINT_SHAPE.test(input.cnf.jkt)) {
    throw new ValidationError('cnf.jkt must be a SHA-256 JWK thumbprint.');
  }
  const { depth, act } = input;
  const parent = input.parent_task_id ?? null;
  if (!Number.isSafeInteger(depth) || depth < 0 || depth > MAX_TASK_DEPTH) {
    throw new ValidationError(`depth must be an integer from 0 to ${MAX_TASK_DEPTH}.`);
  }
  if ((parent === null) !== (depth === 0)) throw new ValidationError('Only a root task (depth 0) has no parent.');
  if (actDepth(act) !== depth) throw new ValidationError('The act chain must name one actor per delegation.');
  if (act !== undefined && act.task_id !== undefined && act.task_id !== parent) {
    throw new ValidationError('The newest actor must be the parent task.');
  }
}
