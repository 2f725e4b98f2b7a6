import {
  type AuditEventInput,
  AuditUnavailableError,
  type CustosNode,
  type JsonValue,
  type Principal,
  type RefusedTaskSubject,
  upstreamUseResource,
} from '@custos/core';
import type { NodeHealth } from '../node-health.js';
import { auditAuth } from '../plugins/audit-plugin.js';

/** What is known about one proxied call, filled in as it goes. Never a value, a token or a query. */
export interface ProxyCall {
  /** `base-url` (`/u/NAME/…`) or `forward` (HTTP_PROXY: absolute URLs, CONNECT tunnels). */
  mode: 'base-url' | 'forward';
  readonly requestId: string;
  readonly method: string;
  readonly sourceIp: string;
  readonly started: number;
  upstream?: string;
  /** The path below the upstream, without the query (query values may be anything). */
  path?: string;
  principal: Principal | null;
  /**
   * The task a refused token named (its signature verified: a revoked,
   * ended or expired task), as the API's refusals record it — for the
   * anomaly rules that watch dead tokens being used.
   */
  refusedTask?: RefusedTaskSubject;
  decision: 'allow' | 'deny' | 'error' | null;
  status: number;
  errorCode?: string;
  reason?: string;
  bytesIn: number;
  bytesOut: number;
  /** The secret the call injects (its path): read through the barrier for this call. */
  secretPath?: string;
  /** Audit-key HMAC of a refused proxy credential (never the token), as routes record it. */
  credential?: string;
  /** Audit-key HMAC of a honeytoken's value the caller put in the request (see presentedHoneytoken). */
  presentedValue?: string;
}

/**
 * The audit trail of the proxy, as the audit plugin keeps it for routes:
 *
 * - A call that goes out is recorded *before* anything is sent (phase
 *   `request`); if that record cannot be made durable the call is refused
 *   (CUSTOS_ERR_AUDIT_UNAVAILABLE) and nothing reaches the upstream.
 * - Its outcome (phase `response`: status, bytes each way, duration, or the
 *   error that cut it) is recorded when the exchange ends. The response has
 *   streamed by then — an answer cannot wait for its own end to be audited —
 *   so a failure here cannot withdraw it; it is logged and makes
 *   `GET /v1/sys/health` report `audit_unavailable`, like any failed record.
 * - A call refused before it went out is one event with the refusal.
 * - A CONNECT (forward mode) is one event (phase `tunnel`): the tunnel it
 *   opened, recorded before the `200` is sent (fail-closed), or its refusal;
 *   every request inside is then a call of its own as above.
 *
 * The event names the acting task, its whole chain and the upstream
 * (`upstream/NAME`, action `use`); the path below the upstream is recorded
 * without its query, and, once read, the path of the secret the call
 * injects (`secret_path`: the same for every call of the upstream, so a
 * honeytoken's path there is what the `honeytoken` rule recognises). A
 * refused credential is recorded by its audit-key HMAC (`data.credential`),
 * as routes record it.
 */
export class ProxyAudit {
  readonly #node: CustosNode;
  readonly #health: NodeHealth | undefined;

  constructor(node: CustosNode, health?: NodeHealth) {
    this.#node = node;
    this.#health = health;
  }

  /** Fail-closed: throws CUSTOS_ERR_AUDIT_UNAVAILABLE when the event is not durable. */
  async record(call: ProxyCall, phase: 'request' | 'response' | 'refusal' | 'tunnel'): Promise<void> {
    try {
      await this.#node.services().audit.record(event(call, phase));
      // A value presented in the request is one touch: on the first record
      // of the call only, not again on its outcome.
      call.presentedValue = undefined;
    } catch (error) {
      this.#health?.auditFailed();
      throw error instanceof AuditUnavailableError ? error : new AuditUnavailableError({ cause: error });
    }
    this.#health?.auditSucceeded();
  }
}

function event(call: ProxyCall, phase: 'request' | 'response' | 'refusal' | 'tunnel'): AuditEventInput {
  const details: Record<string, JsonValue> = {
    phase: phase === 'refusal' ? 'response' : phase,
    proxy: call.mode,
    ...(call.upstream ? { upstream: call.upstream } : {}),
    ...(call.path ? { upstream_path: call.path } : {}),
    ...(call.secretPath ? { secret_path: call.secretPath } : {}),
    ...(call.refusedTask ? { refused_task: { ...call.refusedTask } } : {}),
  };
  if (phase !== 'request') {
    details.bytes_in = call.bytesIn;
    details.bytes_out = call.bytesOut;
    details.duration_ms = Math.round(performance.now() - call.started);
  }
  const status = phase === 'request' ? 0 : call.status;
  return {
    type: 'request',
    request_id: call.requestId,
    auth: auditAuth(call.principal),
    request: {
      method: call.method,
      route: call.method === 'CONNECT' ? 'CONNECT' : call.mode === 'forward' ? 'forward' : '/u/:name/*',
      ...(call.upstream ? { path: upstreamUseResource(call.upstream), action: 'use' } : {}),
      source_ip: call.sourceIp,
    },
    decision: call.decision ?? (status >= 400 ? (status === 401 || status === 403 ? 'deny' : 'error') : 'allow'),
    status,
    ...(call.errorCode ? { error_code: call.errorCode } : {}),
    ...(call.reason ? { reason: call.reason } : {}),
    ...(call.credential || call.presentedValue
      ? {
          data: {
            ...(call.credential ? { credential: call.credential } : {}),
            ...(call.presentedValue ? { presented_value: call.presentedValue } : {}),
          },
        }
      : {}),
    details,
  };
}
