import { parseScope, type ScopeEntry } from './task-scope.js';

/** One delegating actor (RFC 8693 `act`): the parent task, and nested in `act` the ones before it. */
export interface TaskActor {
  readonly sub: string;
  readonly task_id?: string;
  readonly act?: TaskActor;
}

/** The claims of a verified custos task token (docs/task-tokens.md). Times are epoch seconds. */
export interface TaskClaims {
  readonly iss: string;
  /** The identity holding the task tree: `bootstrap:…`, `jwt:<iss>#<sub>`, a SPIFFE id, `token:…`. */
  readonly sub: string;
  readonly aud: string | readonly string[];
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  readonly jti: string;
  readonly task_id: string;
  /** null for a root task. */
  readonly parent_task_id: string | null;
  readonly depth: number;
  readonly role: string;
  /** The scope text, space-separated `ACTION:PATTERN` entries. */
  readonly scope: string;
  /** {@link scope} parsed. */
  readonly scopeEntries: readonly ScopeEntry[];
  readonly act?: TaskActor;
  /** Present on a DPoP-bound token: the thumbprint of the agent's key. */
  readonly cnf?: { readonly jkt: string };
}

const MAX_DEPTH = 32;
const JTI = /^[A-Za-z0-9_-]{22}$/;
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

/**
 * The claims of a payload whose signature verified, checked as the server
 * checks them (packages/core/src/task-tokens/task-token-claims.ts): every
 * claim present and typed, `exp > iat`, `nbf ≥ iat`, `depth` equal to the
 * actors in `act` and `parent_task_id` null exactly at the root, a scope the
 * server would parse. Undefined otherwise. The result is frozen: it may be
 * shared by every later use of the same token.
 */
export function parseTaskClaims(payload: unknown): TaskClaims | undefined {
  if (!isObject(payload)) return undefined;
  const p = payload;
  const aud = p.aud;
  if (
    !isText(p.iss) ||
    !isText(p.sub) ||
    !(isText(aud) || (Array.isArray(aud) && aud.length > 0 && aud.every(isText))) ||
    !Number.isSafeInteger(p.iat) ||
    !Number.isSafeInteger(p.nbf) ||
    !Number.isSafeInteger(p.exp) ||
    typeof p.jti !== 'string' ||
    !JTI.test(p.jti) ||
    !isText(p.task_id) ||
    !(p.parent_task_id === null || isText(p.parent_task_id)) ||
    !Number.isSafeInteger(p.depth) ||
    !isText(p.role) ||
    typeof p.scope !== 'string'
  ) {
    return undefined;
  }
  const [iat, nbf, exp, depth] = [p.iat, p.nbf, p.exp, p.depth] as number[] as [number, number, number, number];
  if (exp <= iat || nbf < iat) return undefined;
  if (depth < 0 || depth > MAX_DEPTH || (p.parent_task_id === null) !== (depth === 0)) return undefined;
  let act: TaskActor | undefined;
  if (p.act !== undefined) {
    act = parseActor(p.act, MAX_DEPTH);
    if (act === undefined) return undefined;
  }
  let actors = 0;
  for (let a = act; a !== undefined; a = a.act) actors++;
  if (actors !== depth) return undefined;
  let cnf: { jkt: string } | undefined;
  if (p.cnf !== undefined) {
    if (!isObject(p.cnf) || typeof p.cnf.jkt !== 'string' || !THUMBPRINT.test(p.cnf.jkt)) return undefined;
    cnf = { jkt: p.cnf.jkt };
  }
  const scopeEntries = parseScope(p.scope);
  if (scopeEntries === undefined) return undefined;
  return deepFreeze({
    iss: p.iss,
    sub: p.sub,
    aud: typeof aud === 'string' ? aud : [...(aud as string[])],
    iat,
    nbf,
    exp,
    jti: p.jti,
    task_id: p.task_id,
    parent_task_id: p.parent_task_id as string | null,
    depth,
    role: p.role,
    scope: p.scope,
    scopeEntries,
    ...(act === undefined ? {} : { act }),
    ...(cnf === undefined ? {} : { cnf }),
  });
}

function parseActor(value: unknown, budget: number): TaskActor | undefined {
  if (budget <= 0 || !isObject(value) || !isText(value.sub)) return undefined;
  if (value.task_id !== undefined && !isText(value.task_id)) return undefined;
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

function isText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
