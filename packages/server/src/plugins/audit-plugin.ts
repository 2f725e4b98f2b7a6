import {
  type AuditAuth,
  type AuditEventInput,
  AuditUnavailableError,
  type CustosNode,
  type Principal,
} from '@custos/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { NodeHealth } from '../node-health.js';

const READ_ONLY = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The audit trail for every request, in two hooks that no route can skip.
 *
 * Fail-closed, in two phases:
 * - A request that changes state (anything but GET/HEAD) is recorded *before*
 *   its handler runs. If that record cannot be written, the handler never
 *   runs: nothing changes without a trace.
 * - Every request's outcome is recorded in `onSend`, before the first byte of
 *   the response leaves. If that record cannot be written, the response is
 *   replaced by CUSTOS_ERR_AUDIT_UNAVAILABLE: a secret is never served
 *   unaudited. Reads need only this one event, since nothing happened that the
 *   response event does not cover.
 *
 * While sealed nothing can be audited (the audit key is behind the barrier);
 * a sealed server answers only health, seal status and unseal, which is why
 * only those routes are allowed then.
 *
 * Each outcome is reported to `health`: a refusal because nothing could be
 * recorded (a full disk, a database gone) makes `GET /v1/sys/health` answer
 * 503 until an event is recorded again.
 */
export function registerAudit(app: FastifyInstance, node: CustosNode, health?: NodeHealth): void {
  const recordNoted = async (input: AuditEventInput): Promise<void> => {
    try {
      await record(node, input);
    } catch (error) {
      health?.auditFailed();
      throw error;
    }
    health?.auditSucceeded();
  };

  app.addHook('preHandler', async (request) => {
    if (node.sealed || READ_ONLY.has(request.method) || request.routeOptions.config.unaudited) return;
    await recordNoted(event(request, undefined, 'request'));
    request.auditedRequest = true;
  });

  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (request.routeOptions.config.unaudited) return payload;
    if (node.sealed) {
      if (request.routeOptions.config.whileSealed || reply.statusCode === 204 || request.is404) return payload;
      // Sealed while this request was in flight (a concurrent seal): its
      // response can no longer be audited, so it is not sent.
      const sealed = node.sealedError();
      reply.code(sealed.status);
      reply.header('content-type', 'application/json; charset=utf-8');
      return JSON.stringify({ error: sealed.toJSON() });
    }
    try {
      await recordNoted(event(request, reply, 'response'));
      return payload;
    } catch (error) {
      request.log.error({ code: 'CUSTOS_ERR_AUDIT_UNAVAILABLE', err: error }, 'audit failed: response withheld');
      const refusal = new AuditUnavailableError();
      reply.code(refusal.status);
      reply.header('content-type', 'application/json; charset=utf-8');
      return JSON.stringify({ error: refusal.toJSON() });
    }
  });
}

/**
 * Records, one event each, the paths a single request read on the caller's
 * behalf (a route that reads many secrets at once, such as the scanner's
 * fingerprints): the trail then shows *which* secrets were touched, as if
 * each had been read alone. Fail-closed like the rest: the caller must not
 * answer if this throws.
 */
export async function recordPathReads(
  node: CustosNode,
  request: FastifyRequest,
  paths: readonly string[],
): Promise<void> {
  await recordPerPath(node, request, paths, 'read', { phase: 'path_read' });
}

/**
 * Records, one event each, the secret paths a caller reported it found
 * stored values of (`custos scan` / `custos redact` matching the vault's
 * fingerprints): no action, since nothing was read — the trail says where a
 * stored secret was seen outside custos. Fail-closed like the rest.
 */
export async function recordPathReports(
  node: CustosNode,
  request: FastifyRequest,
  paths: readonly string[],
  reportedBy: string,
): Promise<void> {
  await recordPerPath(node, request, paths, undefined, { phase: 'path_report', reported_by: reportedBy });
}

async function recordPerPath(
  node: CustosNode,
  request: FastifyRequest,
  paths: readonly string[],
  action: string | undefined,
  details: { [name: string]: string },
): Promise<void> {
  const base = event(request, undefined, 'request');
  await Promise.all(
    paths.map((path) =>
      record(node, {
        ...base,
        request: { ...base.request!, path, ...(action ? { action } : {}) },
        decision: 'allow',
        status: 200,
        details,
      }),
    ),
  );
}

async function record(node: CustosNode, input: AuditEventInput): Promise<void> {
  try {
    await node.services().audit.record(input);
  } catch (error) {
    throw error instanceof AuditUnavailableError ? error : new AuditUnavailableError({ cause: error });
  }
}

function event(
  request: FastifyRequest,
  reply: FastifyReply | undefined,
  phase: 'request' | 'response',
): AuditEventInput {
  const principal = request.auth;
  const access = request.routeOptions.config.access;
  const status = reply?.statusCode ?? 0;
  const decision =
    request.decision ?? (status >= 400 ? (status === 401 || status === 403 ? 'deny' : 'error') : 'allow');
  return {
    type: 'request',
    request_id: request.id,
    auth: auditAuth(principal),
    request: {
      method: request.method,
      route: request.routeOptions.url ?? 'unknown',
      ...(request.resourcePath ? { path: request.resourcePath } : {}),
      ...(access?.kind === 'policy' ? { action: access.action } : {}),
      source_ip: request.ip,
    },
    decision: decision === 'allow' && status >= 500 ? 'error' : decision,
    status,
    ...(request.errorCode ? { error_code: request.errorCode } : {}),
    ...(request.auditReason ? { reason: request.auditReason } : {}),
    ...(request.auditCredential ? { data: { credential: request.auditCredential } } : {}),
    details: {
      phase,
      ...(request.auditIssuedTask ? { issued_task: request.auditIssuedTask } : {}),
      ...(request.auditAudience ? { audience: request.auditAudience } : {}),
      ...(request.auditIdentity ? { identity: request.auditIdentity } : {}),
      ...(request.auditElevation ? { elevation: request.auditElevation } : {}),
      ...(request.auditSource ? { source: request.auditSource } : {}),
      ...(request.auditRefusedTask ? { refused_task: { ...request.auditRefusedTask } } : {}),
    },
  };
}

/**
 * Who asked, for the event: accessors and ids, never a token. Every event of
 * an authenticated caller carries its stable id — `token_accessor` for an
 * operator token, `task_id` with `identity` for a task — because the display
 * name is the token creator's choice and proves nothing.
 */
export function auditAuth(principal: Principal | null): AuditAuth {
  if (!principal) return {};
  if (principal.kind === 'operator') {
    const { token } = principal;
    return {
      token_accessor: token.accessor,
      display_name: token.display_name,
      policies: token.policies,
      ...(token.root ? { root: true } : {}),
    };
  }
  const { task, role } = principal;
  return {
    task_id: task.task_id,
    identity: task.sub,
    role: role.name,
    display_name: `task:${task.task_id}`,
    policies: role.policies,
    task_chain: task.chain,
  };
}
