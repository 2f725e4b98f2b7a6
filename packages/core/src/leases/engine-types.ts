/** An engine as stored (sealed): its admin URL never leaves the barrier. */
export interface EngineRecord {
  name: string;
  type: 'postgres' | 'mysql' | 'aws-sts';
  /** The admin URL of a database engine; empty for `aws-sts` (custos's AWS principal comes from the SDK default chain). */
  url: string;
  /** `aws-sts` only: where its STS and IAM calls go (public configuration, shown by `read`). */
  aws?: AwsEngineSettings;
  /**
   * Static users of this database whose passwords a database rotator may
   * change, set by whoever configures the engine. Never the engine's own
   * admin account (that one changes only through `rotate-root`). Absent in
   * records written before the list existed: none then.
   */
  rotatable_users?: string[];
  /**
   * CA certificates (PEM) the database's TLS certificate must chain to,
   * given inline (a path would have custos read whatever file it names).
   * Implies TLS. Public material, shown by `read`; absent: the system CAs,
   * and TLS only if the URL's `sslmode` asks for it.
   */
  tls_ca?: string;
  created_time: string;
  updated_time: string;
  root_rotated_time: string | null;
}

/** Where an `aws-sts` engine's calls go. */
export interface AwsEngineSettings {
  region: string;
  /** Absent: AWS's regional STS endpoint. */
  sts_endpoint?: string;
  /** Absent: AWS's global IAM endpoint. */
  iam_endpoint?: string;
}

/** What an `aws-sts` role issues: sessions of one IAM role, narrowed by a session policy. */
export interface AwsRoleSettings {
  /** The IAM role assumed (`arn:aws:iam::<account>:role/<name>`). */
  role_arn: string;
  /** A session policy (JSON, at most 2048 characters): the session gets the intersection with the role's policies. */
  session_policy?: string;
}

/** An engine as shown to callers: never the URL or its credential. */
export type EngineView = Omit<EngineRecord, 'url' | 'rotatable_users'> & { rotatable_users: string[] };

/** A role of an engine as stored and shown (statements are not secret). */
export interface EngineRoleRecord {
  engine: string;
  name: string;
  creation_statements: string[];
  revocation_statements: string[];
  default_ttl_ms: number;
  max_ttl_ms: number;
  /** `aws-sts` roles only. */
  aws?: AwsRoleSettings;
  created_time: string;
  updated_time: string;
}

export interface EngineRoleInput {
  creation_statements?: string[];
  revocation_statements?: string[];
  default_ttl_ms?: number;
  max_ttl_ms?: number;
  /** `aws-sts` roles: the IAM role and session policy. */
  aws?: AwsRoleSettings;
}
