/** Where a lease is in its life. `revoke_failed` leases are still retried, and reported. */
export type LeaseState = 'active' | 'revoking' | 'revoked' | 'revoke_failed';

/** A dynamic credential as custos keeps it (sealed; never the password). */
export interface LeaseRecord {
  id: string;
  engine: string;
  role: string;
  username: string;
  /** The owning task, or null for an operator's lease (then only its TTL bounds it). */
  task_id: string | null;
  /** The owning task's chain (root first), so an ancestor may manage its subtree's leases. */
  task_chain: string[];
  /**
   * Who asked, by stable id: `task:<id>` or `token:<accessor>` (an operator
   * token). Never a display name, which is cosmetic and chosen by the
   * token's creator.
   */
  owner: string;
  issued_time: string;
  /** Epoch ms. */
  expires_at: number;
  /** Latest expiry a renewal may reach (issue time + the role's max TTL, capped by the task). */
  max_expires_at: number;
  state: LeaseState;
  /** Failed revocation attempts so far. */
  attempts: number;
  /** The error code of the last failed attempt (never a message: it could echo SQL or a name). */
  last_error: string | null;
  revoked_time: string | null;
  /**
   * `aws-sts` leases: the role session. `username` holds its access key id
   * (an identifier, in CloudTrail; the secret key and token are never stored).
   */
  aws?: { role_arn: string; session_name: string; source_identity: string };
}

/** A lease as shown to callers. */
export interface LeaseView extends Omit<LeaseRecord, 'expires_at' | 'max_expires_at'> {
  expire_time: string;
}

/** Freshly issued credentials: the password is shown once and never stored. */
export interface IssuedLease {
  lease_id: string;
  engine: string;
  role: string;
  username: string;
  password: string;
  /** `aws-sts` leases: the session token (with `username` = access key id, `password` = secret access key). */
  session_token?: string;
  /** `aws-sts` leases: the assumed-role ARN the session acts as. */
  assumed_role_arn?: string;
  expire_time: string;
  ttl_seconds: number;
  task_id: string | null;
}

/** Who a lease is for. */
export interface LeaseOwner {
  /** Who asks, by stable id: `task:<id>` or `token:<accessor>` (see `principalName`). */
  name: string;
  /** Set for task principals. */
  task?: { id: string; chain: readonly string[]; expiresAtMs: number };
}
