/**
 * The actions custos authorises, in Cedar as `Custos::Action::"read"` etc.
 * One list so the schema, the request builder and the scope parser agree.
 */
export const POLICY_ACTIONS = [
  'read',
  'write',
  'list',
  'delete',
  'issue',
  'delegate',
  'rotate',
  'revoke',
  'admin',
  // Sending a request through an upstream (`use` on `upstream/<name>`): the
  // proxy attaches the upstream's credential, which the caller never holds.
  'use',
  // Deciding a task's access request (`approve` on `sys/requests/<action>/<path>`,
  // see docs/jit.md): a human's act, never implied by `admin` on anything else.
  'approve',
] as const;

/** An action a principal may be allowed to perform on a path. */
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

const ACTION_SET: ReadonlySet<string> = new Set(POLICY_ACTIONS);

/** True if `value` is one of {@link POLICY_ACTIONS}. */
export function isPolicyAction(value: string): value is PolicyAction {
  return ACTION_SET.has(value);
}
