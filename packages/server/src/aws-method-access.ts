import { type CustosNode, PermissionDeniedError } from '@custos/core';
import type { FastifyRequest } from 'fastify';

/**
 * Who may bind a custos role in an AWS login method. A binding decides which
 * AWS principals start tasks of the role — the same power a JWT method's
 * writer would have over every role, which is why a role must name its JWT
 * methods (`jwt_methods`). AWS methods carry their bindings themselves, so
 * the rule is enforced here instead: writing a method (`admin` on
 * `sys/auth/aws/<method>`, checked by the route) also requires `write` on
 * `sys/roles/<role>` for every role it binds — the permission of whoever
 * writes the role itself. A role must additionally allow `aws` in its `auth`
 * (the role writer's own opt-in). A refusal is recorded for the audit event.
 */
export function authorizeAwsMethodBindings(
  request: FastifyRequest,
  node: CustosNode,
  bindings: ReadonlyArray<{ role: string }>,
): void {
  const principal = request.auth;
  for (const role of new Set(bindings.map((b) => b.role))) {
    const allowed =
      principal !== null &&
      node.services().authorize(principal, 'write', `sys/roles/${role}`, { sourceIp: request.ip, now: new Date() })
        .allowed;
    if (allowed) continue;
    request.decision = 'deny';
    request.auditReason = 'aws_binding_requires_role_write';
    throw new PermissionDeniedError();
  }
}
