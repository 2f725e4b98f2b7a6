import type { HoneytokenWatch } from '../honeytokens/honeytoken-types.js';
import type { AnomalyRule } from './anomaly-rule.js';
import type { QuarantineConfig } from './quarantine-config.js';
import { type BootstrapReuseConfig, BootstrapReuseRule } from './rules/bootstrap-reuse-rule.js';
import { type CredentialRateConfig, CredentialRateRule } from './rules/credential-rate-rule.js';
import { type DeadTaskTokenConfig, DeadTaskTokenRule } from './rules/dead-task-token-rule.js';
import { type DelegationShapeConfig, DelegationShapeRule } from './rules/delegation-shape-rule.js';
import { type DeniedSpikeConfig, DeniedSpikeRule } from './rules/denied-spike-rule.js';
import { type FirstAccessConfig, FirstAccessRule } from './rules/first-access-rule.js';
import { HoneytokenRule, type HoneytokenRuleConfig } from './rules/honeytoken-rule.js';
import { type NewSourceAddressConfig, NewSourceAddressRule } from './rules/new-source-address-rule.js';
import { type DeclaredHoursLookup, type OffHoursConfig, OffHoursRule } from './rules/off-hours-rule.js';
import { type RequestBurstConfig, RequestBurstRule } from './rules/request-burst-rule.js';

/**
 * The anomaly engine's configuration (`anomaly:` in the server config).
 * Each rule takes its own partial configuration over its defaults, or
 * `false` to turn it off.
 */
export interface AnomalyConfig {
  /** Default true. */
  readonly enabled?: boolean;
  /** Stored audit records the rules learn from at unseal, without raising anything (default 10,000). */
  readonly warmEvents?: number;
  /** Events that may wait for the rules before new ones are dropped (default 100,000). */
  readonly maxQueue?: number;
  /** Findings each rule may raise per minute (default 60); beyond, they are counted as suppressed. */
  readonly maxFindingsPerMinute?: number;
  /** Automatic quarantine: actions per rule (`anomaly.rules.<rule>.action`) and `action_min_severity`. */
  readonly actions?: QuarantineConfig;
  readonly rules?: {
    readonly 'dead-task-token'?: Partial<DeadTaskTokenConfig> | false;
    readonly 'bootstrap-token-reuse'?: Partial<BootstrapReuseConfig> | false;
    readonly 'denied-spike'?: Partial<DeniedSpikeConfig> | false;
    readonly 'first-access'?: Partial<FirstAccessConfig> | false;
    readonly 'new-source-address'?: Partial<NewSourceAddressConfig> | false;
    readonly 'request-burst'?: Partial<RequestBurstConfig> | false;
    readonly 'credential-rate'?: Partial<CredentialRateConfig> | false;
    readonly 'off-hours'?: Partial<OffHoursConfig> | false;
    readonly 'delegation-shape'?: Partial<DelegationShapeConfig> | false;
    readonly honeytoken?: Partial<HoneytokenRuleConfig> | false;
  };
}

/** What some rules read besides their configuration, kept current by the node (never storage per event). */
export interface AnomalyRuleContext {
  /** Roles' declared active hours, for `off-hours`. */
  readonly declaredHours?: DeclaredHoursLookup;
  /** The honeytoken registry (the `honeytoken` rule never fires without it). */
  readonly honeytokens?: HoneytokenWatch;
}

/** The rules a configuration turns on, each with its defaults under the configured values. */
export function createAnomalyRules(config: AnomalyConfig = {}, context: AnomalyRuleContext = {}): AnomalyRule[] {
  const rules: AnomalyRule[] = [];
  const c = config.rules ?? {};
  if (c['dead-task-token'] !== false) rules.push(new DeadTaskTokenRule(c['dead-task-token'] ?? {}));
  if (c['bootstrap-token-reuse'] !== false) rules.push(new BootstrapReuseRule(c['bootstrap-token-reuse'] ?? {}));
  if (c['denied-spike'] !== false) rules.push(new DeniedSpikeRule(c['denied-spike'] ?? {}));
  if (c['first-access'] !== false) rules.push(new FirstAccessRule(c['first-access'] ?? {}));
  if (c['new-source-address'] !== false) rules.push(new NewSourceAddressRule(c['new-source-address'] ?? {}));
  if (c['request-burst'] !== false) rules.push(new RequestBurstRule(c['request-burst'] ?? {}));
  if (c['credential-rate'] !== false) rules.push(new CredentialRateRule(c['credential-rate'] ?? {}));
  if (c['off-hours'] !== false) rules.push(new OffHoursRule(c['off-hours'] ?? {}, context.declaredHours));
  if (c['delegation-shape'] !== false) rules.push(new DelegationShapeRule(c['delegation-shape'] ?? {}));
  if (c.honeytoken !== false) rules.push(new HoneytokenRule(c.honeytoken ?? {}, context.honeytokens));
  return rules;
}
