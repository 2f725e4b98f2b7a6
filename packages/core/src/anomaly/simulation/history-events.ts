import { createHash } from 'node:crypto';
import type { AuditAuth, AuditEventInput } from '../../audit/audit-event.js';

/**
 * The audit records of each operation a generated history contains, in the
 * exact shape the server's audit plugin and proxy write them (a state-changing
 * request: its before-record, phase `request`, status 0, then its outcome).
 * `audit-history-shape.test.ts` in the server package performs each of these
 * operations against a real server and compares the records field by field,
 * so the generator cannot drift from what the rules really see.
 */

/** A task as the generator tracks it. */
export interface HistoryTask {
  readonly id: string;
  readonly identity: string;
  readonly role: string;
  /** Root to this task. */
  readonly chain: readonly string[];
  readonly policies: readonly string[];
  readonly ip: string;
}

/** An operator token (rotations, role changes): never judged by the default rules, but in every real trail. */
export interface HistoryOperator {
  readonly accessor: string;
  readonly name: string;
  readonly policies: readonly string[];
  readonly ip: string;
}

const taskAuth = (t: HistoryTask): AuditAuth => ({
  task_id: t.id,
  identity: t.identity,
  role: t.role,
  display_name: `task:${t.id}`,
  policies: [...t.policies],
  task_chain: [...t.chain],
});

const operatorAuth = (o: HistoryOperator): AuditAuth => ({
  token_accessor: o.accessor,
  display_name: o.name,
  policies: [...o.policies],
});

interface Req {
  method: string;
  route: string;
  path?: string;
  action?: string;
  ip: string;
}

const request = (r: Req) => ({
  method: r.method,
  route: r.route,
  ...(r.path !== undefined ? { path: r.path } : {}),
  ...(r.action !== undefined ? { action: r.action } : {}),
  source_ip: r.ip,
});

/** A state-changing request as the audit plugin records it: before the handler, then its outcome. */
function twoPhase(
  requestId: string,
  auth: { before: AuditAuth; after: AuditAuth },
  req: { before: Req; after: Req },
  outcome: { status: number; details?: Record<string, string> },
): AuditEventInput[] {
  return [
    {
      type: 'request',
      request_id: requestId,
      auth: auth.before,
      request: request(req.before),
      decision: 'allow',
      status: 0,
      details: { phase: 'request' },
    },
    {
      type: 'request',
      request_id: requestId,
      auth: auth.after,
      request: request(req.after),
      decision: 'allow',
      status: outcome.status,
      details: { phase: 'response', ...outcome.details },
    },
  ];
}

/** The operations of a generated history, each as its audit records. */
export const historyEvents = {
  /** `POST /v1/auth/{bootstrap,cert,jwt}/login`: the outcome names the new task as caller and as issued. */
  login(requestId: string, route: string, task: HistoryTask): AuditEventInput[] {
    const req = { method: 'POST', route, ip: task.ip };
    return twoPhase(
      requestId,
      { before: {}, after: taskAuth(task) },
      { before: req, after: req },
      { status: 200, details: { issued_task: task.id } },
    );
  },

  /** A spent bootstrap token presented again: the route's security alert, then the refusal. */
  bootstrapReuse(requestId: string, ip: string, bootstrapAccessor: string, tokenHmac: string): AuditEventInput[] {
    const req = { method: 'POST', route: '/v1/auth/bootstrap/login', source_ip: ip };
    return [
      {
        type: 'request',
        request_id: requestId,
        auth: {},
        request: req,
        decision: 'allow',
        status: 0,
        details: { phase: 'request' },
      },
      {
        type: 'security_alert',
        kind: 'bootstrap_token_reused',
        request_id: requestId,
        request: req,
        data: { bootstrap_token: tokenHmac },
        details: { bootstrap_accessor: bootstrapAccessor },
      },
      {
        type: 'request',
        request_id: requestId,
        auth: {},
        request: req,
        decision: 'deny',
        status: 401,
        error_code: 'CUSTOS_ERR_UNAUTHENTICATED',
        details: { phase: 'response' },
      },
    ];
  },

  /** `GET /v1/secrets/data/PATH` by a task, served or refused by policy. */
  secretRead(requestId: string, task: HistoryTask, path: string, denied = false): AuditEventInput[] {
    return [
      {
        type: 'request',
        request_id: requestId,
        auth: taskAuth(task),
        request: request({ method: 'GET', route: '/v1/secrets/data/*', path, action: 'read', ip: task.ip }),
        decision: denied ? 'deny' : 'allow',
        status: denied ? 403 : 200,
        ...(denied ? { error_code: 'CUSTOS_ERR_PERMISSION_DENIED' } : {}),
        details: { phase: 'response' },
      },
    ];
  },

  /**
   * A child task minted by `parent`: `POST /v1/tasks/delegate` (the parent's token authenticates the route) or
   * the RFC 8693 exchange `POST /v1/oauth/token` (public route: the subject token is read in the handler, so
   * the before-record has no caller).
   */
  delegate(requestId: string, parent: HistoryTask, child: string, via: 'json' | 'exchange'): AuditEventInput[] {
    const route = via === 'json' ? '/v1/tasks/delegate' : '/v1/oauth/token';
    return twoPhase(
      requestId,
      { before: via === 'json' ? taskAuth(parent) : {}, after: taskAuth(parent) },
      {
        before: { method: 'POST', route, ip: parent.ip },
        after: { method: 'POST', route, path: `sys/tasks/${parent.id}`, ip: parent.ip },
      },
      { status: 200, details: { issued_task: child } },
    );
  },

  /** `POST /v1/creds/ENGINE/ROLE`: a dynamic database login leased to the task. */
  credsIssue(requestId: string, task: HistoryTask, engineRole: string): AuditEventInput[] {
    const req = { method: 'POST', route: '/v1/creds/:engine/:role', path: engineRole, action: 'issue', ip: task.ip };
    return twoPhase(
      requestId,
      { before: taskAuth(task), after: taskAuth(task) },
      { before: req, after: req },
      { status: 200 },
    );
  },

  /** A call through the credential proxy in base-URL mode (`/u/NAME/…`): the call going out, then its answer. */
  proxyCall(
    requestId: string,
    task: HistoryTask,
    call: { upstream: string; path: string; status: number; bytesIn: number; bytesOut: number; durationMs: number },
  ): AuditEventInput[] {
    const req = request({
      method: 'POST',
      route: '/u/:name/*',
      path: `upstream/${call.upstream}`,
      action: 'use',
      ip: task.ip,
    });
    // Each upstream injects its own secret (`kv/upstreams/NAME` in the generated deployment).
    const base = {
      proxy: 'base-url',
      upstream: call.upstream,
      upstream_path: call.path,
      secret_path: `kv/upstreams/${call.upstream}`,
    };
    return [
      {
        type: 'request',
        request_id: requestId,
        auth: taskAuth(task),
        request: req,
        decision: 'allow',
        status: 0,
        details: { phase: 'request', ...base },
      },
      {
        type: 'request',
        request_id: requestId,
        auth: taskAuth(task),
        request: req,
        decision: call.status >= 400 ? (call.status === 401 || call.status === 403 ? 'deny' : 'error') : 'allow',
        status: call.status,
        details: {
          phase: 'response',
          ...base,
          bytes_in: call.bytesIn,
          bytes_out: call.bytesOut,
          duration_ms: call.durationMs,
        },
      },
    ];
  },

  /** `POST /v1/tasks/ID/end` by the task itself: its work is done. */
  taskEnd(requestId: string, task: HistoryTask): AuditEventInput[] {
    const route = '/v1/tasks/:id/end';
    return twoPhase(
      requestId,
      { before: taskAuth(task), after: taskAuth(task) },
      {
        before: { method: 'POST', route, ip: task.ip },
        after: { method: 'POST', route, path: `sys/tasks/${task.id}`, ip: task.ip },
      },
      { status: 200 },
    );
  },

  /**
   * A genuine token of a task that is over, presented to read a secret: refused at authentication, the
   * record names the task (`refused_task`) and why, and has no path (the route never ran).
   */
  deadToken(
    requestId: string,
    task: HistoryTask,
    ip: string,
    reason: 'task_revoked' | 'task_ended' | 'task_expired',
  ): AuditEventInput[] {
    return [
      {
        type: 'request',
        request_id: requestId,
        auth: {},
        request: request({ method: 'GET', route: '/v1/secrets/data/*', action: 'read', ip }),
        decision: 'deny',
        status: 401,
        error_code: 'CUSTOS_ERR_UNAUTHENTICATED',
        reason,
        // Every refused credential is recorded by its audit HMAC; here a stand-in derived from the task.
        data: { credential: `hmac-sha256:${createHash('sha256').update(task.id).digest('hex')}` },
        details: { phase: 'response', refused_task: { identity: task.identity, role: task.role, task_id: task.id } },
      },
    ];
  },

  /** `PUT /v1/secrets/data/PATH` by an operator token: a rotation's new version. */
  operatorWrite(requestId: string, operator: HistoryOperator, path: string): AuditEventInput[] {
    const req = { method: 'PUT', route: '/v1/secrets/data/*', path, action: 'write', ip: operator.ip };
    return twoPhase(
      requestId,
      { before: operatorAuth(operator), after: operatorAuth(operator) },
      { before: req, after: req },
      { status: 200 },
    );
  },
};
