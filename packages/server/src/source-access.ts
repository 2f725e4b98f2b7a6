import { type CustosNode, PermissionDeniedError, sourceMountPrefix } from '@custos/core';
import type { FastifyRequest } from 'fastify';

/**
 * Who may mount a source. A source runs with custos's own cloud identity
 * and answers every read of `kv/<name>/…`, so writing one (`write` on
 * `sys/sources/<name>`, operators only, checked by the route) also requires
 * the permission it exercises: `write` (or `admin`) on `kv/<name>/*`.
 * Otherwise an operator allowed to configure sources, but not to write
 * `kv/finance/…`, could mount a source of their own at `kv/finance` and
 * hand the finance tasks values of their choosing. (Mounting over existing
 * local secrets is refused outright by the service.)
 *
 * A refusal is recorded on the request for the audit event.
 */
export function authorizeSourceWrite(request: FastifyRequest, node: CustosNode, name: string): void {
  const principal = request.auth;
  if (!principal) throw new PermissionDeniedError();
  const context = { sourceIp: request.ip, now: new Date() };
  const mount = `${sourceMountPrefix(name)}*`;
  const allowed = (action: 'write' | 'admin') => node.services().authorize(principal, action, mount, context).allowed;
  if (!allowed('write') && !allowed('admin')) {
    request.decision = 'deny';
    request.auditReason = 'source_requires_mount_write';
    throw new PermissionDeniedError();
  }
}

/**
 * The import's per-secret check: reading through the source is a kv read
 * (`read` on `kv/<source>/<name>`) and writing the copy is a kv write
 * (`write` on the destination): an import never moves a value the caller
 * could not have read and written by hand.
 */
export function importPermission(
  request: FastifyRequest,
  node: CustosNode,
): (sourcePath: string, destinationPath: string) => boolean {
  const principal = request.auth;
  const context = { sourceIp: request.ip, now: new Date() };
  return (sourcePath, destinationPath) =>
    principal !== null &&
    node.services().authorize(principal, 'read', sourcePath, context).allowed &&
    node.services().authorize(principal, 'write', destinationPath, context).allowed;
}
