import type { Role } from './role-types.js';
import { TASK_RECORD_VERSION, type TaskRecord } from './task-types.js';

/**
 * Whether a stored task is a task of this role *incarnation*: the role it
 * names exists, and it is the same role, not a namesake created after the
 * original was deleted. Checked on every use of a task token (on every node,
 * from storage), so a recreated role revives nothing: not across nodes, not
 * after a restart.
 */
export function isTaskOfRole(record: Pick<TaskRecord, 'role' | 'role_id'>, role: Pick<Role, 'name' | 'id'>): boolean {
  // Both absent: a task and a role from before roles had ids. A role made
  // since then always has one, so a legacy task never matches a new role.
  return record.role === role.name && (record.role_id ?? null) === (role.id ?? null);
}

/**
 * The labels a policy may see for a task, or `undefined` when its labels
 * cannot be trusted: a record written before labels had an origin (no
 * version) carries labels its agent chose at login or rewrote when
 * delegating. Such a task is refused rather than shown to Cedar with them —
 * stripping them could let it escape a `forbid` on a label, keeping them
 * could let it satisfy a `permit` — and it lives at most a day (the longest
 * task TTL), so its agent logs in again. A legacy task without labels has
 * nothing to mistrust and keeps working.
 */
export function trustedLabels(record: Pick<TaskRecord, 'labels' | 'v'>): Readonly<Record<string, string>> | undefined {
  if ((record.v ?? 1) >= TASK_RECORD_VERSION) return record.labels;
  return Object.keys(record.labels ?? {}).length === 0 ? {} : undefined;
}
