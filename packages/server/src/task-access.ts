import {
  type CustosNode,
  PermissionDeniedError,
  type PolicyAction,
  type TaskRecord,
  type TaskTokenSubject,
  UnauthenticatedError,
} from '@custos/core';
import type { FastifyRequest } from 'fastify';

/**
 * Access to something owned by a task tree (a task, a lease) that the
 * policy plugin cannot decide up front: an operator needs `action` on
 * `path` by policy (the path checked is the path audited, so a policy can
 * grant one object or, with `resource in Custos::Path::"sys/tasks/"`, all);
 * a task may act only within its own subtree — on objects whose owner chain
 * contains it — never on its parent's or a sibling's. `ownerChain` undefined
 * means a listing, which a task may always ask for (it sees only its own).
 * The decision is recorded on the request for the audit event.
 */
export function authorizeSubtreeAccess(
  request: FastifyRequest,
  node: CustosNode,
  action: PolicyAction,
  path: string,
  ownerChain: readonly string[] | undefined,
): void {
  const principal = request.auth;
  request.resourcePath = path;
  let allowed = false;
  if (principal?.kind === 'task') {
    allowed = ownerChain === undefined || ownerChain.includes(principal.task.task_id);
  } else if (principal?.kind === 'operator') {
    allowed = node.services().authorize(principal, action, path, { sourceIp: request.ip, now: new Date() }).allowed;
  }
  request.decision = allowed ? 'allow' : 'deny';
  if (!allowed) throw new PermissionDeniedError();
}

/**
 * Access to one task, however it was named (id or accessor):
 * {@link authorizeSubtreeAccess} on `sys/tasks/<id>` of the task found.
 */
export function authorizeTaskAccess(
  request: FastifyRequest,
  node: CustosNode,
  action: PolicyAction,
  target: Pick<TaskRecord, 'id' | 'chain'>,
): void {
  authorizeSubtreeAccess(request, node, action, `sys/tasks/${target.id}`, target.chain);
}

/** The calling task (for routes only a task token may use). */
export function callingTask(request: FastifyRequest): TaskTokenSubject {
  const principal = request.auth;
  if (principal?.kind !== 'task') {
    request.decision = 'deny';
    throw principal ? new PermissionDeniedError() : new UnauthenticatedError();
  }
  return principal.task;
}

/**
 * Delegation is an action like any other: the parent task's scope and its
 * role's policies must allow `delegate` on `sys/tasks/<parent id>`, so a role
 * may forbid it (`forbid(… action == Custos::Action::"delegate" …) when {
 * context.depth >= 1 }`), and a task whose scope names no `delegate:` entry
 * cannot mint children at all. `max_depth` still caps the depth.
 */
export function authorizeDelegation(request: FastifyRequest, node: CustosNode, parent: TaskTokenSubject): void {
  const principal = request.auth;
  const path = `sys/tasks/${parent.task_id}`;
  request.resourcePath = path;
  const allowed =
    principal?.kind === 'task' &&
    node.services().authorize(principal, 'delegate', path, { sourceIp: request.ip, now: new Date() }).allowed;
  request.decision = allowed ? 'allow' : 'deny';
  if (!allowed) throw new PermissionDeniedError();
}
