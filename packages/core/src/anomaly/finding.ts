/** How urgently an operator should look. */
export type FindingSeverity = 'low' | 'medium' | 'high' | 'critical';

export const FINDING_SEVERITIES: readonly FindingSeverity[] = ['low', 'medium', 'high', 'critical'];

/** An operator's view of a finding: raised, or acknowledged by someone. */
export type FindingState = 'open' | 'acked';

/**
 * Who the finding is about. Ids and names only, as the audit event carried
 * them (task ids, identities, role names, token accessors), never a token.
 */
export interface FindingSubject {
  readonly identity?: string;
  readonly role?: string;
  readonly task_id?: string;
  readonly token_accessor?: string;
  /** For refusals with no identity at all (a bad or reused credential): the address it came from. */
  readonly source_ip?: string;
}

/**
 * One audit record a finding rests on: its chain position and hash. `custos
 * audit verify` proves the chain up to a signed checkpoint, so an operator
 * can check that the evidence is genuine and unchanged (`custos audit
 * export`, then look up the seq).
 */
export interface FindingEvidence {
  readonly seq: number;
  readonly hash: string;
  readonly request_id?: string;
}

/** What a rule says when it fires; the engine gives it an id and stores it. */
export interface FindingDraft {
  readonly severity: FindingSeverity;
  readonly subject: FindingSubject;
  /** The records, oldest first; the last one is the record that made the rule fire. */
  readonly evidence: readonly FindingEvidence[];
  /** One paragraph for a human: what was seen, against which baseline, and why it matters. May quote paths. */
  readonly explanation: string;
}

/** A stored finding (an alert). Sealed behind the barrier: its explanation may quote secret paths. */
export interface Finding extends FindingDraft {
  readonly id: string;
  readonly rule: string;
  /** When the rule fired: the time of the audit record that made it fire. */
  readonly time: string;
  readonly state: FindingState;
  readonly acked_by?: string;
  readonly acked_at?: string;
  /** The quarantine actions taken on it (see quarantine-runner.ts); absent when its rule has none. */
  readonly actions?: readonly FindingActionResult[];
}

/** What one quarantine action did for a finding. Names ids only, never a secret. */
export interface FindingActionResult {
  readonly action: string;
  /** `skipped`: nothing to act on (no task in the subject, the task or role is gone, already suspended). */
  readonly outcome: 'done' | 'skipped' | 'failed';
  readonly at: string;
  readonly attempts: number;
  /** What was acted on. */
  readonly target?: { readonly task_id?: string; readonly role?: string; readonly identity?: string };
  /** A short reason for skipped or failed (an error code), never a stack or a value. */
  readonly detail?: string;
}
