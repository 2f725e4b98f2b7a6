import type { AuditObservation } from '../../audit/audit-log.js';
import type { AnomalyRule } from '../anomaly-rule.js';
import type { FindingDraft, FindingSeverity } from '../finding.js';
import { evidenceOf, refusedTaskOf, setBounded } from '../rule-support.js';

export interface DeadTaskTokenConfig {
  /** Default `high`: a live credential of a finished task is in someone's hands. */
  readonly severity: FindingSeverity;
  /** One finding per task per this long (ms, default 1 h): a retrying agent makes one alert, not thousands. */
  readonly cooldownMs: number;
  /** Tasks remembered for the cooldown at most (default 10,000). */
  readonly maxTracked: number;
}

export const DEAD_TASK_TOKEN_DEFAULTS: DeadTaskTokenConfig = {
  severity: 'high',
  cooldownMs: 3_600_000,
  maxTracked: 10_000,
};

/**
 * Audit reasons of a refused task token whose signature was genuine but whose
 * task is over: revoked (by an operator, or a revoked ancestor), ended, or
 * past its expiry. Set by the authenticator (`TaskInactiveError`,
 * `TaskTokenInvalidError('expired')`).
 */
const DEAD_REASONS: ReadonlyMap<string, string> = new Map([
  ['task_revoked', 'revoked'],
  ['task_ended', 'ended'],
  ['task_expired', 'expired'],
  ['expired', 'expired'],
]);

/** Routes that only end a task: harmless, and expected from its own agent once the tree is revoked. */
const CLEANUP_ROUTES: ReadonlySet<string> = new Set(['/v1/tasks/:id/end', '/v1/tasks/:id/revoke']);

/**
 * `dead-task-token`: a genuine token of a task that is over was presented.
 * A finished task's agent has no reason to call again; a copy of its token
 * in a log, a prompt or another process does. The request was refused — the
 * finding says that the token got out.
 */
export class DeadTaskTokenRule implements AnomalyRule {
  readonly name = 'dead-task-token';
  readonly description = 'A revoked, ended or expired task token was presented';
  readonly config: DeadTaskTokenConfig;
  readonly #lastRaised = new Map<string, number>();

  constructor(config: Partial<DeadTaskTokenConfig> = {}) {
    this.config = { ...DEAD_TASK_TOKEN_DEFAULTS, ...config };
  }

  observe(observation: AuditObservation, epochMs: number): FindingDraft | undefined {
    const event = observation.event;
    if (event.type !== 'request' || event.decision !== 'deny' || event.reason === undefined) return undefined;
    const state = DEAD_REASONS.get(event.reason);
    if (state === undefined) return undefined;
    // Ending or revoking a task that is already over is the cleanup its own
    // agent does after an ancestor revoked the tree (`withTask`, `custos
    // run`): it asks for nothing, and would make every revocation an alert.
    if (CLEANUP_ROUTES.has(event.request?.route ?? '')) return undefined;
    const task = refusedTaskOf(event);
    // Without a verified task (a forged or garbled token) there is nobody to name: other rules count those.
    if (!task) return undefined;
    const last = this.#lastRaised.get(task.task_id);
    if (last !== undefined && epochMs - last < this.config.cooldownMs) return undefined;
    setBounded(this.#lastRaised, task.task_id, epochMs, this.config.maxTracked);
    const source = event.request?.source_ip ? ` from ${event.request.source_ip}` : '';
    return {
      severity: this.config.severity,
      subject: task,
      evidence: [evidenceOf(observation)],
      explanation:
        `A token of task ${task.task_id} (identity ${task.identity}, role ${task.role}) was presented${source} ` +
        `after the task was ${state}; the request was refused. The token's signature was valid, so it is a real ` +
        'custos credential that outlived its task: it was copied somewhere (a log, a prompt, another process) or ' +
        'the agent kept running after its task finished. Find where the token was kept, and check what the same ' +
        `identity did before the task was ${state}. Further uses by this task within ` +
        `${Math.round(this.config.cooldownMs / 60_000)} minutes raise no new finding.`,
    };
  }
}
