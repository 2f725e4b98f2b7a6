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
 * Access to a task by someone other than the policy plugin can decide up
 * front: an operator needs `action` on `sys/tasks/<id>` by policy; a task may act
 * only on itself and its descendants (its subtree), never on its parent or a
 * sibling. The decision is recorded on the request for the audit event.
 */
export async function authorizeTaskAccess(
  request: FastifyRequest,
  node: CustosNode,
  action: PolicyAction,
  target: TaskRecord,
): Promise<void> {
  const principal = request.auth;
  request.resourcePath = `sys/tasks/${target.id}`;
  let allowed: boolean;
  if (principal?.kind === 'task') {
    allowed = target.chain.includes(principal.task.task_id);
  } else if (principal?.kind === 'operator') {
    // The path checked is the path audited: a policy can grant one task
    // (`sys/tasks/<id>`) or all of them (`resource in Custos::Path::"sys/tasks/"`).
    allowed = node
      .services()
      .authorize(principal, action, request.resourcePath, { sourceIp: request.ip, now: new Date() }).allowed;
  } else {
    allowed = false;
  }
  request.decision = allowed ? 'allow' : 'deny';
  if (!allowed) throw new PermissionDeniedError();
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
