/** How a new version is made and applied. */
export type RotatorConfig =
  /** A fresh random value in `field` (default `value`); nothing outside custos to update. */
  | { type: 'random'; field?: string; length?: number }
  /**
   * A static database user's password, set with `ALTER ROLE/USER` through a
   * configured engine, then tried with a fresh login; a refused login puts
   * the old password (`current`'s field) back and fails the rotation. The
   * user must be on the engine's `rotatable_users` (checked when configured
   * and at every rotation) and is never the engine's admin account.
   */
  | { type: 'database'; engine: string; username: string; field?: string }
  /**
   * POSTs `{ path, version, field, value }` — the rotated field's new value
   * only, never the secret's other fields — to `url` through the egress
   * policy (no redirects, a deadline); the receiver applies it and must
   * answer 2xx `{ "ack": true }`.
   */
  | { type: 'webhook'; url: string; field?: string };

/** A secret's rotation policy (sealed: webhook URLs may carry credentials). */
export interface RotationConfig {
  path: string;
  rotator: RotatorConfig;
  /** Rotate every this many ms; null = only on demand (or by `cron`). */
  every_ms: number | null;
  /** A five-field cron expression in UTC (`0 3 * * *`); null = none. */
  cron: string | null;
  /** How long `previous` stays readable for pinned task trees after a rotation. */
  grace_ms: number;
  /** Epoch ms of the next scheduled rotation, if any. */
  next_at: number | null;
  last_rotation: { version: number; time: string } | null;
  last_error: string | null;
}

/** What a rotation changed. */
export interface RotationResult {
  path: string;
  version: number;
  previous: number | null;
}

/** An event subscribers receive (`GET /v1/events`). */
export type CustosEvent =
  | SecretRotatedEvent
  | AlertRaisedEvent
  | AlertActionEvent
  | TaskChangedEvent
  | AccessRequestEvent;

/**
 * A just-in-time access request was created or changed state (docs/jit.md):
 * sent to operator subscribers who may `read` `path` (`sys/requests/<id>`),
 * never to a task. No reason (the agent's text): fetch the request for it.
 */
export interface AccessRequestEvent {
  type: 'request.created' | 'request.approved' | 'request.denied' | 'request.revoked' | 'request.expired';
  path: string;
  id: string;
  task_id: string;
  scope: string;
  status: string;
  time: string;
}

/** A secret was rotated: sent to subscribers who may `read` its path. */
export interface SecretRotatedEvent {
  type: 'secret.rotated';
  path: string;
  version: number;
  time: string;
}

/**
 * The anomaly engine raised a finding: sent to operator subscribers who may
 * `read` `path` (`sys/alerts/<id>`). It carries no subject, evidence or
 * explanation (they may name secret paths): the subscriber fetches the
 * finding with `GET /v1/alerts/<id>`, under the same check.
 */
export interface AlertRaisedEvent {
  type: 'alert.raised';
  path: string;
  id: string;
  rule: string;
  severity: string;
  time: string;
}

/**
 * An anomaly rule's quarantine action ran on a finding (revoked a task tree,
 * suspended a role or an identity) or failed: to operator subscribers who
 * may `read` `path` (`sys/alerts/<id>`), like `alert.raised`. Names no
 * subject: `GET /v1/alerts/<id>` shows what was acted on.
 */
export interface AlertActionEvent {
  type: 'alert.action';
  path: string;
  id: string;
  rule: string;
  action: string;
  outcome: 'done' | 'skipped' | 'failed';
  time: string;
}

/**
 * A task was created (started or delegated), ended or revoked: to operator
 * subscribers who may `read` `path` (`sys/tasks/<id>`), the rule of
 * `GET /v1/tasks/<id>` — never to a task, which would learn of tasks outside
 * its subtree. Names ids and the role only (no labels, scope or identity:
 * the subscriber reads the task under the same check). For an end or a
 * revocation, the task's whole subtree ended with it.
 */
export interface TaskChangedEvent {
  type: 'task.created' | 'task.ended' | 'task.revoked';
  path: string;
  task_id: string;
  parent_id: string | null;
  chain: string[];
  role: string;
  time: string;
}
