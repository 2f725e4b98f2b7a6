import { SuspendedError } from '../errors/index.js';
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

/**
 * The labels a task holds now: its recorded labels (operator-granted, the
 * agent's own, inherited), with its role's *current* labels over them.
 *
 * A role's labels are the operator's statement about every task of the role
 * — a `forbid` on `quarantine=true` is meant to stop them all at once — so
 * they are read from the role at each use, not only copied when the task
 * started (which left a change waiting up to the role's max TTL). As at
 * start, the role's value wins over any other; a key the record says came
 * from the role alone, and which the role no longer sets, is dropped. The
 * caller has the role already (it checked the task's role incarnation), so
 * this costs no storage read.
 */
export function currentTaskLabels(
  labels: Readonly<Record<string, string>>,
  record: Pick<TaskRecord, 'role_label_keys'>,
  role: Pick<Role, 'labels'>,
): Readonly<Record<string, string>> {
  const fromRole = record.role_label_keys ?? [];
  const roleLabels = role.labels ?? {};
  if (fromRole.length === 0 && Object.keys(roleLabels).length === 0) return labels;
  const current: Record<string, string> = { ...labels };
  for (const key of fromRole) delete current[key];
  return Object.assign(current, roleLabels);
}

/**
 * Refuses (`CUSTOS_ERR_SUSPENDED`) a suspended role, or an identity
 * suspended under it. Called wherever a role admits someone — every login
 * and operator start (TaskService.start), every delegation, and every
 * authentication of a live task — with the role just read from storage, so
 * a suspension holds on every node from the next request, and delegating or
 * logging in again with a fresh credential does not get around it. Live
 * tasks are refused rather than revoked so that `custos role resume` gives
 * them back: suspension is the reversible quarantine (revoking is the
 * `revoke-task-tree` action). Costs no storage read: the caller has the role.
 */
export function assertRoleAdmits(
  role: Pick<Role, 'suspended' | 'suspended_identities'>,
  identity: string | undefined,
): void {
  if (role.suspended) throw new SuspendedError('role');
  const identities = role.suspended_identities;
  if (identities && identity !== undefined && Object.hasOwn(identities, identity)) {
    throw new SuspendedError('identity');
  }
}
