/** Where a request stands. `expired`: its elevation ran out, or it was never decided before its task ended. */
export type AccessRequestStatus = 'pending' | 'approved' | 'denied' | 'revoked' | 'expired';

export const ACCESS_REQUEST_STATUSES: readonly AccessRequestStatus[] = [
  'pending',
  'approved',
  'denied',
  'revoked',
  'expired',
];

/** One approver's approval: counted once per approver. */
export interface AccessApproval {
  /** `token:<accessor>` (never a display name). */
  readonly by: string;
  readonly at: string;
}

/**
 * What a task asked for (sealed in storage: its reason and scope name paths).
 * Immutable once written; decisions live beside it (see the service).
 */
export interface AccessRequestRecord {
  readonly id: string;
  readonly task_id: string;
  /** The task's chain, root first, the requester last. */
  readonly chain: readonly string[];
  /** The identity the task acts for (its tree's `sub`). */
  readonly identity: string;
  /**
   * `identity` and the tokens that minted it, up to the highest one the
   * root token did not mint (absent on records from before it was kept).
   */
  readonly identity_lineage?: readonly string[];
  readonly role: string;
  /** The role incarnation (see Role.id), so a recreated role's approvers do not decide an old request. */
  readonly role_id?: string;
  /** Normalised scope text (`ACTION:PATTERN …`). */
  readonly scope: string;
  readonly reason: string;
  readonly ttl_seconds: number;
  readonly children: boolean;
  /** Copied from the role when the request was made: a later role change does not lower the bar of a pending request. */
  readonly approvals_required: number;
  readonly approver_policies: readonly string[];
  readonly created_at: string;
  /** Epoch ms of the requesting task's end: a request never outlives it. */
  readonly task_expires_at: number;
}

/** The one decision a request gets, written once (put-if-absent): the first decision wins. */
export interface AccessDecisionRecord {
  readonly outcome: 'approved' | 'denied';
  readonly by: string;
  readonly at: string;
  /** Approved: the (possibly narrowed) scope and TTL, and when the elevation ends. */
  readonly scope?: string;
  readonly ttl_seconds?: number;
  readonly children?: boolean;
  readonly expires_at?: number;
  readonly deny_reason?: string;
}

/** The API view of a request. */
export interface AccessRequest {
  readonly id: string;
  readonly status: AccessRequestStatus;
  readonly task_id: string;
  readonly chain: readonly string[];
  readonly identity: string;
  readonly role: string;
  readonly scope: string;
  readonly reason: string;
  readonly ttl_seconds: number;
  readonly children: boolean;
  readonly approvals_required: number;
  readonly approvals: readonly AccessApproval[];
  readonly created_at: string;
  readonly decided_at?: string;
  readonly decided_by?: string;
  /** Once approved: when the elevation ends (ISO). */
  readonly expires_at?: string;
  readonly deny_reason?: string;
  readonly revoked_at?: string;
  readonly revoked_by?: string;
  /** The scope first asked for, when an approver narrowed it. */
  readonly requested_scope?: string;
}

/**
 * An elevation in force: the scope added to a task (and, with `children`,
 * to its descendants) until `expires_at` (epoch ms).
 */
export interface ActiveElevation {
  readonly request_id: string;
  readonly task_id: string;
  readonly scope: string;
  readonly children: boolean;
  readonly expires_at: number;
}
