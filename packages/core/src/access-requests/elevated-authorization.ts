import type { AuthzDecision, PolicyAction, ScopeEntry } from '../policy/index.js';
import { scopeAllows } from '../policy/index.js';
import type { ActiveElevation } from './access-request-types.js';

/** What the task's own scope refused: a default deny (no statement decided it). */
export const SCOPE_DEFAULT_DENY: AuthzDecision = Object.freeze({ allowed: false, reasons: Object.freeze([]) });

/**
 * The decision under a just-in-time elevation (docs/jit.md), or undefined
 * when none applies. An elevation applies when its approved scope covers
 * the request AND the role's *current* request ceiling still does (an
 * operator narrowing the ceiling takes back what lies outside it at once).
 * Cedar then decides with `context.elevation.active == true`: a permit
 * allows, a forbid refuses, and a default deny is lifted — the human
 * approval is the permit the role's policies did not have.
 */
export function authorizeElevated(
  elevations: readonly ActiveElevation[],
  role: { request_scope?: string },
  action: PolicyAction,
  path: string,
  parsedScope: (scope: string) => ScopeEntry[],
  cedar: (elevation: ActiveElevation) => AuthzDecision,
): AuthzDecision | undefined {
  if (!role.request_scope || !scopeAllows(parsedScope(role.request_scope), action, path)) return undefined;
  const now = Date.now();
  for (const elevation of elevations) {
    if (elevation.expires_at <= now || !scopeAllows(parsedScope(elevation.scope), action, path)) continue;
    const decision = cedar(elevation);
    if (decision.allowed) return decision;
    if (decision.reasons.length > 0 || (decision.errors?.length ?? 0) > 0) return decision;
    return Object.freeze({ allowed: true, reasons: Object.freeze([`elevation:${elevation.request_id}`]) });
  }
  return undefined;
}
