import { type CustosNode, engineUserResource, PermissionDeniedError, type RotatorConfig } from '@custos/core';
import type { FastifyRequest } from 'fastify';

/**
 * Who may configure which rotator. A rotator runs later with custos's own
 * power — the database rotator as the engine's admin (`ALTER ROLE … PASSWORD`),
 * the webhook rotator by sending the new value out — so configuring one
 * requires the permissions it will exercise, beyond `rotate` on the secret
 * (which the route checks):
 *
 * - database: `rotate` on `sys/engines/<engine>/users/<username>`, the same
 *   action on the same tree as `rotate-root` (`sys/engines/<engine>`), one
 *   resource per user so a policy can grant one user or, with
 *   `resource in Custos::Path::"sys/engines/<engine>/users/"`, all of them.
 *   The user must also be on the engine's own `rotatable_users` list (set by
 *   whoever configures the engine), which the rotation service checks now
 *   and again at every rotation; the engine's admin account never is.
 * - webhook: `read` (or `admin`) on the secret — the receiver gets the new
 *   value, so only someone who could read it may choose where it goes.
 * - random: nothing more; it reaches nothing outside custos.
 *
 * A refusal is recorded on the request for the audit event.
 */
export function authorizeRotator(
  request: FastifyRequest,
  node: CustosNode,
  path: string,
  rotator: RotatorConfig,
): void {
  const principal = request.auth;
  if (!principal) throw new PermissionDeniedError();
  const context = { sourceIp: request.ip, now: new Date() };
  const allowed = (action: 'read' | 'admin' | 'rotate', resource: string) =>
    node.services().authorize(principal, action, resource, context).allowed;
  let refusal: string | undefined;
  if (rotator.type === 'webhook' && !allowed('read', path) && !allowed('admin', path)) {
    refusal = 'webhook_rotator_requires_read';
  } else if (rotator.type === 'database' && !allowed('rotate', engineUserResource(rotator.engine, rotator.username))) {
    refusal = 'database_rotator_requires_engine_user';
  }
  if (refusal) {
    request.decision = 'deny';
    request.auditReason = refusal;
    throw new PermissionDeniedError();
  }
}
