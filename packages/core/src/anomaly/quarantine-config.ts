import { FINDING_SEVERITIES, type FindingSeverity } from './finding.js';

/**
 * What custos does on its own when a rule raises a finding:
 * - `revoke-task-tree`: revokes the whole tree of the finding's task, from
 *   its root (see QuarantineRunner for why the root);
 * - `suspend-identity`: suspends the finding's identity under its role;
 * - `suspend-role`: suspends the finding's role.
 */
export type QuarantineAction = 'revoke-task-tree' | 'suspend-identity' | 'suspend-role';

export const QUARANTINE_ACTIONS: readonly QuarantineAction[] = ['revoke-task-tree', 'suspend-identity', 'suspend-role'];

/** Actions per rule (`anomaly.rules.<rule>.action`) and the least severity acted on. */
export interface QuarantineConfig {
  /** Per rule name: its actions (empty: none). A rule not named here takes {@link DEFAULT_RULE_ACTIONS}. */
  readonly rules?: { readonly [rule: string]: readonly QuarantineAction[] };
  /** Only findings at least this severe are acted on (default `low`: every finding of a rule with actions). */
  readonly minSeverity?: FindingSeverity;
}

/**
 * Defaults by rule name: `none` for every rule but `honeytoken` — nothing
 * legitimate reads a decoy, so the tree that touched one is revoked at once
 * (harmless where that rule does not exist). Every other rule judges
 * behaviour against a baseline and can be wrong: acting on it is an
 * operator's choice, after tuning with replay.
 */
export const DEFAULT_RULE_ACTIONS: { readonly [rule: string]: readonly QuarantineAction[] } = {
  honeytoken: ['revoke-task-tree'],
};

export const isQuarantineAction = (value: unknown): value is QuarantineAction =>
  typeof value === 'string' && (QUARANTINE_ACTIONS as readonly string[]).includes(value);

/** A rule's actions, configured or by default, whatever the severity (for `custos alerts rules`). */
export function ruleActions(config: QuarantineConfig | undefined, rule: string): readonly QuarantineAction[] {
  // Own properties only: a rule named `constructor` must not find Object's.
  const configured = config?.rules && Object.hasOwn(config.rules, rule) ? config.rules[rule] : undefined;
  if (configured) return configured;
  return Object.hasOwn(DEFAULT_RULE_ACTIONS, rule) ? (DEFAULT_RULE_ACTIONS[rule] ?? []) : [];
}

/** The actions to take for a finding of `rule` at `severity`. */
export function actionsFor(
  config: QuarantineConfig | undefined,
  rule: string,
  severity: FindingSeverity,
): readonly QuarantineAction[] {
  const min = FINDING_SEVERITIES.indexOf(config?.minSeverity ?? 'low');
  if (FINDING_SEVERITIES.indexOf(severity) < min) return [];
  return ruleActions(config, rule);
}
