import { type CustosNode, PermissionDeniedError } from '@custos/core';
import type { FastifyRequest } from 'fastify';

/**
 * Who may write which engine role. A role's statements are SQL that custos
 * runs *as the engine's admin* — when the role is written (validated, then
 * rolled back or dropped), at every credential issued and at every
 * revocation — so whoever writes statement text acts with the engine's whole
 * power: `ALTER ROLE victim WITH PASSWORD '{{password}}'` in a creation
 * statement hands another account (or, with `CURRENT_USER`, the admin
 * itself) to whoever can issue from the role. That power belongs to whoever
 * holds the engine: `write` on `sys/engines/<engine>`, the permission that
 * sets its admin URL and its rotatable users.
 *
 * The rule, enforced here for `PUT /v1/engines/<engine>/roles/<role>` (which
 * itself requires `write` on `sys/engines/<engine>/roles/<role>`):
 *
 * - a request carrying statement text (a non-empty `creation_statements` or
 *   `revocation_statements`) also requires `write` on `sys/engines/<engine>`;
 * - a request without any — only TTLs, or empty lists, which mean the
 *   engine's built-in statements (a read-only login; see
 *   `@custos/engines` default-statements.ts) — needs only the role-level
 *   grant. Changing the TTLs of a role whose statements the engine's holder
 *   wrote keeps those statements as they are: no new text runs.
 *
 * Renewal runs no role statements (the engines extend `VALID UNTIL`
 * themselves), so there is nothing else to guard. A refusal is recorded on
 * the request for the audit event.
 */
export function authorizeEngineRoleWrite(
  request: FastifyRequest,
  node: CustosNode,
  engine: string,
  body: {
    creation_statements?: readonly string[];
    revocation_statements?: readonly string[];
    role_arn?: string;
    session_policy?: string;
  },
): void {
  // An aws-sts role's IAM role and session policy are its statements: they
  // decide which of the AWS powers custos's own principal holds a task gets,
  // so they need the engine's grant too, not only the role's.
  const writesStatements =
    (body.creation_statements?.length ?? 0) > 0 ||
    (body.revocation_statements?.length ?? 0) > 0 ||
    body.role_arn !== undefined ||
    body.session_policy !== undefined;
  if (!writesStatements) return;
  const principal = request.auth;
  const allowed =
    principal !== null &&
    node.services().authorize(principal, 'write', `sys/engines/${engine}`, { sourceIp: request.ip, now: new Date() })
      .allowed;
  if (allowed) return;
  request.decision = 'deny';
  request.auditReason = 'custom_statements_require_engine_write';
  throw new PermissionDeniedError();
}
