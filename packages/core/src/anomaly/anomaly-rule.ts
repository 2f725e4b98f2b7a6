import type { AuditObservation } from '../audit/audit-log.js';
import type { FindingDraft } from './finding.js';

/**
 * A detection rule over the audit stream. Each rule lives in its own file
 * with its configuration type and defaults (see `rules/`).
 *
 * Rules are fed every acknowledged audit event, in chain order, one at a
 * time, from the engine's queue — never on a request's path. They must:
 * - cost O(1) amortised per event, allocate little, and never read storage
 *   (the audited read path is hot: rules on may cost at most a few percent);
 * - keep bounded state (per-identity maps are capped);
 * - derive everything from the event: the same history gives the same
 *   findings, so a rule can be warmed from stored history after a restart
 *   and replayed over it for tuning.
 *
 * `observe` returns a finding to raise, or undefined. A rule that throws is
 * caught by the engine, counted and reported; the other rules go on.
 */
export interface AnomalyRule {
  /** Stable kebab-case name (`dead-task-token`): in findings, filters and configuration. */
  readonly name: string;
  /** One line for `custos alerts rules` and the docs. */
  readonly description: string;
  /** The rule's effective configuration (defaults applied), for display. */
  readonly config: unknown;
  observe(observation: AuditObservation, epochMs: number): FindingDraft | undefined;
}
