import type { AuditObservation } from '../../audit/audit-log.js';
import type { AnomalyRule } from '../anomaly-rule.js';
import type { FindingDraft, FindingSeverity } from '../finding.js';
import { evidenceOf } from '../rule-support.js';

export interface BootstrapReuseConfig {
  /** Default `critical`: either the agent replays its token or someone else logged in with it first. */
  readonly severity: FindingSeverity;
}

export const BOOTSTRAP_REUSE_DEFAULTS: BootstrapReuseConfig = { severity: 'critical' };

/**
 * `bootstrap-token-reuse`: a single-use bootstrap token was presented again.
 * The login route records a `security_alert` event
 * (`bootstrap_token_reused`) before refusing; this rule turns that record
 * into a finding, so it reaches the alert sinks and `custos alerts` like
 * every other detection. Every reuse is a finding: there is no cooldown,
 * since each one is a login attempt by whoever holds the token.
 */
export class BootstrapReuseRule implements AnomalyRule {
  readonly name = 'bootstrap-token-reuse';
  readonly description = 'A single-use bootstrap token was presented a second time';
  readonly config: BootstrapReuseConfig;

  constructor(config: Partial<BootstrapReuseConfig> = {}) {
    this.config = { ...BOOTSTRAP_REUSE_DEFAULTS, ...config };
  }

  observe(observation: AuditObservation): FindingDraft | undefined {
    const event = observation.event;
    if (event.type !== 'security_alert' || event.kind !== 'bootstrap_token_reused') return undefined;
    const accessor =
      typeof event.details?.bootstrap_accessor === 'string' ? event.details.bootstrap_accessor : undefined;
    const ip = event.request?.source_ip;
    return {
      severity: this.config.severity,
      subject: {
        ...(accessor ? { token_accessor: accessor } : {}),
        ...(ip ? { source_ip: ip } : {}),
      },
      evidence: [evidenceOf(observation)],
      explanation:
        `The single-use bootstrap token ${accessor ? `with accessor ${accessor} ` : ''}was presented again` +
        `${ip ? ` from ${ip}` : ''} after it had been exchanged for a task; the login was refused. Either the agent ` +
        'it was made for is replaying it (a bug, or a restart that reuses its start-up secret), or someone else ' +
        'obtained the token and one of the two logins was not the intended agent. Find the task started from this ' +
        'token (its identity is bootstrap:<accessor>), check it is the agent you expect, and revoke it if not.',
    };
  }
}
