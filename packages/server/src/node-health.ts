/**
 * What `GET /v1/sys/health` may say is wrong with a running, unsealed node.
 * Fixed words only: health answers without a token, so it names a condition,
 * never a path, an error message or a number an attacker could use.
 */
export type HealthProblem =
  /** The last request's audit event could not be written: every request is refused (fail-closed). */
  | 'audit_unavailable'
  /** The process log cannot be written: lines are held and then dropped (and counted). */
  | 'log_unwritable'
  /**
   * The node stays sealed because its audit chain failed its integrity check
   * (CUSTOS_ERR_AUDIT_INTEGRITY): unsealing again will not help; an operator
   * must look (the detail is in the server log, never here).
   */
  | 'audit_integrity'
  /**
   * A wrapped seal's root of trust (HSM, KMS) went away while running: the
   * node sealed itself and unseals again by itself once it answers.
   */
  | 'seal_unavailable';

/** Every problem word health may answer, in its fixed order (the response schema's enum). */
export const HEALTH_PROBLEMS: readonly HealthProblem[] = [
  'audit_unavailable',
  'log_unwritable',
  'audit_integrity',
  'seal_unavailable',
];

/**
 * The problems of a node that stays sealed for a reason of its own — not
 * one waiting for its unseal keys, which is a state, not a problem.
 */
export function sealedProblems(status: { readonly sealed: boolean; readonly reason?: string }): HealthProblem[] {
  if (!status.sealed || status.reason === undefined) return [];
  if (status.reason === 'CUSTOS_ERR_AUDIT_INTEGRITY') return ['audit_integrity'];
  return SEAL_FAULTS.has(status.reason) ? ['seal_unavailable'] : [];
}

/** The codes a wrapped seal's health check seals a node with (see CustosNode.sealedError). */
const SEAL_FAULTS = new Set([
  'CUSTOS_ERR_SEAL_UNAVAILABLE',
  'CUSTOS_ERR_SEAL_ACCESS_DENIED',
  'CUSTOS_ERR_SEAL_KEY_NOT_FOUND',
  'CUSTOS_ERR_SEAL_KEY_INSECURE',
  'CUSTOS_ERR_SEAL_MECHANISM_UNSUPPORTED',
  'CUSTOS_ERR_HSM_LIBRARY',
  'CUSTOS_ERR_HSM_TOKEN_NOT_FOUND',
]);

export interface NodeHealthOptions {
  /** The log writer's state (see LogDestination). */
  readonly log?: { readonly failing: boolean };
  /**
   * How long one audit failure keeps the node reported as failing when no
   * request has tried since (default 15 s). See {@link NodeHealth}.
   */
  readonly auditHoldMs?: number;
  /** Clock in ms (tests). */
  readonly now?: () => number;
}

const DEFAULT_AUDIT_HOLD_MS = 15_000;

/**
 * The node's health beyond seal state, learnt from what requests meet.
 *
 * Audit is the signal that matters: when no sink can record an event (a full
 * disk, a database gone), every request is refused, so a load balancer should
 * send traffic elsewhere — health answers 503. The state is passive: it is
 * set by the audit plugin's failures and cleared by its next success. So that
 * a node taken out of rotation is not kept out for ever (no traffic, no
 * success to clear it), a failure counts only for `auditHoldMs`; after that
 * health reports healthy again and the next request decides — the half-open
 * state of a circuit breaker.
 */
export class NodeHealth {
  readonly #log: { readonly failing: boolean } | undefined;
  readonly #holdMs: number;
  readonly #now: () => number;
  #auditFailedAt: number | undefined;

  constructor(options: NodeHealthOptions = {}) {
    this.#log = options.log;
    this.#holdMs = options.auditHoldMs ?? DEFAULT_AUDIT_HOLD_MS;
    this.#now = options.now ?? Date.now;
  }

  /** An audit event could not be written (the request was refused). */
  auditFailed(): void {
    this.#auditFailedAt = this.#now();
  }

  /** An audit event was written: audit works again. */
  auditSucceeded(): void {
    this.#auditFailedAt = undefined;
  }

  /** The problems now, in a fixed order; empty when there are none. */
  problems(): HealthProblem[] {
    const problems: HealthProblem[] = [];
    if (this.#auditFailedAt !== undefined && this.#now() - this.#auditFailedAt < this.#holdMs) {
      problems.push('audit_unavailable');
    }
    if (this.#log?.failing) problems.push('log_unwritable');
    return problems;
  }
}
