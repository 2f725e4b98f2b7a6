import type { AuditEvent } from '../audit/audit-event.js';
import type { AuditObservation } from '../audit/audit-log.js';
import type { FindingEvidence, FindingSubject } from './finding.js';

/** The evidence entry for one observed record. */
export function evidenceOf(observation: AuditObservation): FindingEvidence {
  const { seq, hash, event } = observation;
  return event.request_id ? { seq, hash, request_id: event.request_id } : { seq, hash };
}

/**
 * The task a refused task token named, as the audit plugin recorded it
 * (`details.refused_task`). Present only when the token's signature was
 * verified, so a forged token cannot point a finding at someone else.
 */
export function refusedTaskOf(event: AuditEvent): { task_id: string; identity: string; role: string } | undefined {
  const value = event.details?.refused_task;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { task_id, identity, role } = value as Record<string, unknown>;
  if (typeof task_id !== 'string' || typeof identity !== 'string' || typeof role !== 'string') return undefined;
  return { task_id, identity, role };
}

/** Who the event is about: the authenticated caller, else the task a refused token named, else the source address. */
export function subjectOf(event: AuditEvent): FindingSubject {
  const auth = event.auth;
  if (auth?.task_id) {
    return {
      task_id: auth.task_id,
      ...(auth.identity ? { identity: auth.identity } : {}),
      ...(auth.role ? { role: auth.role } : {}),
    };
  }
  if (auth?.token_accessor) return { token_accessor: auth.token_accessor };
  const refused = refusedTaskOf(event);
  if (refused) return refused;
  const ip = event.request?.source_ip;
  return ip ? { source_ip: ip } : {};
}

/**
 * A Map bounded to `max` keys: when full, the oldest inserted key goes. Used
 * for per-identity state, so an attacker cycling identities or addresses
 * costs memory only up to the bound (and loses the oldest baselines, which
 * then warm up again — a missed alarm, never a crash). Returns what was evicted.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): V | undefined {
  let evicted: V | undefined;
  if (!map.has(key) && map.size >= max) {
    const oldest = map.keys().next();
    if (!oldest.done) {
      evicted = map.get(oldest.value);
      map.delete(oldest.value);
    }
  }
  map.set(key, value);
  return evicted;
}

/** A rule's per-role and per-identity settings (`roles`, `identities` in its configuration). */
export interface SubjectOverrides<T> {
  readonly roles: { readonly [role: string]: T };
  readonly identities: { readonly [identity: string]: T };
}

/**
 * The settings that apply to a request by `identity` in `role`: the
 * identity's own entry when it has one — the narrower choice wins whole,
 * so an operator reads one entry to know what applies — else its role's.
 * Own properties only: a role or identity named `constructor` must not find
 * Object's. Two map lookups, no allocation: this runs for every event.
 */
export function overridesFor<T>(
  config: SubjectOverrides<T>,
  role: string | undefined,
  identity: string | undefined,
): T | undefined {
  if (identity !== undefined && Object.hasOwn(config.identities, identity)) return config.identities[identity];
  if (role !== undefined && Object.hasOwn(config.roles, role)) return config.roles[role];
  return undefined;
}
