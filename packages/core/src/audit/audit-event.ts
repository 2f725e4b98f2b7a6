import type { JsonValue } from './canonical-json.js';

/**
 * What an audit event is about:
 * - `request`: one HTTP request, allowed, denied or failed (every request has one).
 * - `security_alert`: something an operator must look at (e.g. a reused
 *   single-use bootstrap token), recorded even when no request is served.
 * - `system`: the server's own life (audit log opened, keyring rotated, …).
 * - `quarantine`: an anomaly rule's automatic action on a finding (a task
 *   tree revoked, a role or identity suspended), with its outcome.
 */
export type AuditEventType = 'request' | 'security_alert' | 'system' | 'quarantine';

/** The outcome of the request: served, refused by policy/authentication, or failed. */
export type AuditDecision = 'allow' | 'deny' | 'error';

/**
 * Who asked. Never a token or a secret: a token is named by its *accessor*
 * (a non-secret handle) or by an HMAC of it placed in {@link AuditEvent.data}.
 */
export interface AuditAuth {
  /** Non-secret handle of the token used (lookup/revocation id), never the token itself. */
  readonly token_accessor?: string;
  /** Cosmetic (a token's creator chose it): identify the caller by `token_accessor` or `task_id`. */
  readonly display_name?: string;
  readonly policies?: readonly string[];
  readonly root?: boolean;
  /** The identity (operator name, role, SPIFFE id, JWT subject). */
  readonly identity?: string;
  /** Task ids from the root task down to the acting task. */
  readonly task_chain?: readonly string[];
  /** The acting task (a task token): with `identity`, the stable id of who asked. */
  readonly task_id?: string;
  /** The acting task's role. */
  readonly role?: string;
}

/** What was asked. */
export interface AuditRequestInfo {
  readonly method: string;
  /** The route pattern (`/v1/secrets/*`), low-cardinality. */
  readonly route: string;
  /** The concrete path acted on (`kv/finance/enrichment-api`), never a value. */
  readonly path?: string;
  /** The policy action (`read`, `write`, `issue`, …). */
  readonly action?: string;
  readonly source_ip?: string;
  readonly user_agent?: string;
}

/**
 * One audit event: a plain JSON object, hashed in its canonical JSON form.
 *
 * Fields are snake_case because the JSON is the interface (exports, jq, SIEMs).
 * The union is open for later issues: new event types and new optional fields
 * can be added without changing the hash construction, since the hash covers
 * whatever canonical JSON the event has.
 */
export type AuditEvent = RequestAuditEvent | SecurityAlertAuditEvent | SystemAuditEvent | QuarantineAuditEvent;

interface AuditEventCommon {
  /** ISO-8601 UTC time the audit log recorded the event (stamped by the log). */
  readonly time: string;
  readonly request_id?: string;
  readonly auth?: AuditAuth;
  readonly request?: AuditRequestInfo;
  readonly decision?: AuditDecision;
  /** HTTP status of the response. */
  readonly status?: number;
  /** The `CUSTOS_ERR_*` code of a denied or failed request. */
  readonly error_code?: string;
  /** A short, safe, human reason (never a secret, SQL text or stack). */
  readonly reason?: string;
  /**
   * Values that must be correlatable but never readable (a token, a
   * bootstrap token id, a client secret): each is `hmac-sha256:<hex>` made
   * with {@link AuditHmac}. The audit log refuses any other form here, so a
   * clear value cannot slip in by mistake.
   */
  readonly data?: { readonly [name: string]: string };
  /**
   * Further non-secret, structured detail (task ids, lease ids, engine names).
   * Whoever fills this is responsible that no secret is in it.
   */
  readonly details?: { readonly [name: string]: JsonValue };
}

export interface RequestAuditEvent extends AuditEventCommon {
  readonly type: 'request';
  readonly request_id: string;
  readonly auth: AuditAuth;
  readonly request: AuditRequestInfo;
  readonly decision: AuditDecision;
  readonly status: number;
}

export interface SecurityAlertAuditEvent extends AuditEventCommon {
  readonly type: 'security_alert';
  /** What was detected, snake_case (`bootstrap_token_reused`). */
  readonly kind: string;
}

export interface SystemAuditEvent extends AuditEventCommon {
  readonly type: 'system';
  /** What happened, snake_case (`audit_opened`, `keyring_rotated`). */
  readonly kind: string;
}

/**
 * An automatic quarantine action (see docs/anomaly.md): `kind` is the
 * action (`revoke_task_tree`, `suspend_identity`, `suspend_role`);
 * `details` name the finding id, the rule, the target (task ids, role,
 * identity) and the outcome (`done`, `skipped`, `failed`) — never a secret.
 */
export interface QuarantineAuditEvent extends AuditEventCommon {
  readonly type: 'quarantine';
  readonly kind: 'revoke_task_tree' | 'suspend_identity' | 'suspend_role';
}

type WithoutTime<E> = E extends AuditEvent ? Omit<E, 'time'> : never;

/** What callers pass to {@link AuditLog.record}: an event without `time`, which the log stamps. */
export type AuditEventInput = WithoutTime<AuditEvent>;
