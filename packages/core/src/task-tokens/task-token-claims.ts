/**
 * The claims of a custos task token and their structural check.
 *
 * Claim names follow the JWT registry (RFC 7519), RFC 8693 (`act`), RFC 7800 /
 * RFC 9449 (`cnf.jkt`) and OAuth (`scope`); the custos-specific ones are
 * snake_case like the registered ones.
 */

/** The JWS `typ` of a task token (see docs/task-tokens.md for why not `at+jwt`). */
export const TASK_TOKEN_TYP = 'custos-task+jwt';

/** Tokens longer than this are refused unread, and never issued. */
export const MAX_TASK_TOKEN_LENGTH = 8 * 1024;

/** The deepest delegation a token may carry (root = 0). Bounds the `act` nesting a verifier walks. */
export const MAX_TASK_DEPTH = 32;

/**
 * One delegating actor, RFC 8693 §4.1: the parent task that minted this token
 * and, nested in `act`, the actors before it (newest outermost).
 */
export interface TaskActor {
  /** The parent task's `sub`. */
  readonly sub: string;
  /** The parent task's `task_id` (present for every actor custos itself records). */
  readonly task_id?: string;
  readonly act?: TaskActor;
}

/** The verified claims of a task token. Times are NumericDates (epoch seconds). */
export interface TaskTokenClaims {
  readonly iss: string;
  /** The identity holding the task: `bootstrap:<accessor>`, `jwt:<iss>#<sub>`, a SPIFFE id or `token:<accessor>` (docs/task-tokens.md). */
  readonly sub: string;
  readonly aud: string | readonly string[];
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  /** 128 random bits, base64url (22 characters). */
  readonly jti: string;
  readonly task_id: string;
  /** null for a root task. */
  readonly parent_task_id: string | null;
  /** 0 for a root task; equals the number of actors in `act`. */
  readonly depth: number;
  readonly role: string;
  /** The policy slice this task holds, space-separated. */
  readonly scope: string;
  /** Every delegating actor, newest outermost; absent for a root task. */
  readonly act?: TaskActor;
  /** Present when the token is sender-constrained (DPoP): the SHA-256 JWK thumbprint of the agent's key. */
  readonly cnf?: { readonly jkt: string };
}

/** What the caller of {@link issueTaskToken} supplies; custos adds `iss`, `aud`, `iat`, `nbf` and (unless given) `jti`. */
export interface TaskTokenInput {
  readonly sub: string;
  readonly task_id: string;
  readonly parent_task_id?: string | null;
  readonly depth: number;
  readonly role: string;
  readonly scope: string;
  readonly act?: TaskActor;
  readonly cnf?: { readonly jkt: string };
  /** Expiry, epoch seconds: take it from {@link clampExpiry}. */
  readonly exp: number;
  /** Defaults to 128 fresh random bits. */
  readonly jti?: string;
}

export const JTI_SHAPE = /^[A-Za-z0-9_-]{22}$/;
/** A base64url SHA-256 digest: an RFC 7638 thumbprint, as `kid` and `cnf.jkt` use. */
export const THUMBPRINT_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** Number of actors in an `act` chain. */
export function actDepth(act: TaskActor | undefined): number {
  let n = 0;
  for (let a = act; a !== undefined; a = a.act) n++;
  return n;
}

/**
 * Checks the shape of a decoded payload and returns the claims custos knows,
 * or undefined when any is missing or mistyped. Runs only after the signature
 * verified, so it guards against our own bugs and version skew, not forgery;
 * unknown claims are ignored so a newer node may add some.
 */
export function parseTaskTokenClaims(payload: unknown): TaskTokenClaims | undefined {
  if (!isObject(payload)) return undefined;
  const p = payload;
  const aud = p.aud;
  if (
    !isNonEmptyString(p.iss) ||
    !isNonEmptyString(p.sub) ||
    !(isNonEmptyString(aud) || (Array.isArray(aud) && aud.length > 0 && aud.every(isNonEmptyString))) ||
    !Number.isSafeInteger(p.iat) ||
    !Number.isSafeInteger(p.nbf) ||
    !Number.isSafeInteger(p.exp) ||
    typeof p.jti !== 'string' ||
    !JTI_SHAPE.test(p.jti) ||
    !isNonEmptyString(p.task_id) ||
    !(p.parent_task_id === null || isNonEmptyString(p.parent_task_id)) ||
    !Number.isSafeInteger(p.depth) ||
    !isNonEmptyString(p.role) ||
    typeof p.scope !== 'string'
  ) {
    return undefined;
  }
  const depth = p.depth as number;
  if (depth < 0 || depth > MAX_TASK_DEPTH || (p.parent_task_id === null) !== (depth === 0)) return undefined;
  let act: TaskActor | undefined;
  if (p.act !== undefined) {
    act = parseActor(p.act, MAX_TASK_DEPTH);
    if (act === undefined) return undefined;
  }
  if (actDepth(act) !== depth) return undefined;
  let cnf: { jkt: string } | undefined;
  if (p.cnf !== undefined) {
    if (!isObject(p.cnf) || typeof p.cnf.jkt !== 'string' || !THUMBPRINT_SHAPE.test(p.cnf.jkt)) return undefined;
    cnf = { jkt: p.cnf.jkt };
  }
  return {
    iss: p.iss,
    sub: p.sub,
    aud: typeof aud === 'string' ? aud : [...(aud as string[])],
    iat: p.iat as number,
    nbf: p.nbf as number,
    exp: p.exp as number,
    jti: p.jti,
    task_id: p.task_id,
    parent_task_id: p.parent_task_id as string | null,
    depth,
    role: p.role,
    scope: p.scope,
    ...(act === undefined ? {} : { act }),
    ...(cnf === undefined ? {} : { cnf }),
  };
}

function parseActor(value: unknown, budget: number): TaskActor | undefined {
  if (budget <= 0 || !isObject(value) || !isNonEmptyString(value.sub)) return undefined;
  if (value.task_id !== undefined && !isNonEmptyString(value.task_id)) return undefined;
  let inner: TaskActor | undefined;
  if (value.act !== undefined) {
    inner = parseActor(value.act, budget - 1);
    if (inner === undefined) return undefined;
  }
  return {
    sub: value.sub,
    ...(value.task_id === undefined ? {} : { task_id: value.task_id }),
    ...(inner === undefined ? {} : { act: inner }),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}
