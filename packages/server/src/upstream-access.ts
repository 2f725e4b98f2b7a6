import { type CustosNode, PermissionDeniedError, parseSecretRef } from '@custos/core';
import type { FastifyRequest } from 'fastify';

/**
 * Who may configure which upstream. An upstream runs later with custos's own
 * power: every call through it sends the secret it names to the base URL it
 * names, for whoever may `use` it. So writing one (`write` on
 * `sys/upstreams/<name>`, operators only, checked by the route) also requires
 * the permissions it will exercise:
 *
 * - `read` (or `admin`) on the secret: choosing where a value is sent is
 *   reading it, as for a webhook rotator — otherwise an operator who cannot
 *   read `kv/llm/openai` could point an upstream at a server of theirs and
 *   receive the key on the first call;
 * - `admin` on `sys/egress` when the upstream has `allow_hosts`: those entries
 *   widen the egress policy (into loopback or private ranges) for this
 *   upstream's calls, which is the server operator's decision
 *   (`--egress-allow`), not any holder of `write` on one upstream's.
 *
 * A refusal is recorded on the request for the audit event.
 */
export function authorizeUpstreamWrite(
  request: FastifyRequest,
  node: CustosNode,
  body: { secret: string; allow_hosts?: readonly string[] },
): void {
  const principal = request.auth;
  if (!principal) throw new PermissionDeniedError();
  // A malformed reference is the service's validation error, reported as such.
  const { path } = parseSecretRef(body.secret);
  const context = { sourceIp: request.ip, now: new Date() };
  const allowed = (action: 'read' | 'admin', resource: string) =>
    node.services().authorize(principal, action, resource, context).allowed;
  let refusal: string | undefined;
  if (!allowed('read', path) && !allowed('admin', path)) refusal = 'upstream_requires_secret_read';
  else if ((body.allow_hosts?.length ?? 0) > 0 && !allowed('admin', 'sys/egress')) {
    refusal = 'upstream_allow_hosts_requires_egress_admin';
  }
  if (refusal) {
    request.decision = 'deny';
    request.auditReason = refusal;
    throw new PermissionDeniedError();
  }
}
