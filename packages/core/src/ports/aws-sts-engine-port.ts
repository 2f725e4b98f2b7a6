import type { EgressPolicy } from '../egress/egress-policy.js';

/**
 * The port through which core drives the `aws-sts` engine: per-task AWS
 * role sessions (`sts:AssumeRole`) and their revocation (a deny written into
 * the IAM role's inline policy, since AWS cannot revoke one session). Core
 * never imports the AWS SDK: the server wiring passes an
 * {@link AwsStsEngineFactory} (normally `createAwsStsEngine` from
 * `@custos/engines`).
 */

/** One `AssumeRole` call, fully decided by core. */
export interface AwsAssumeRoleRequest {
  readonly roleArn: string;
  /** Session policy (JSON): the session gets the intersection of it and the role's policies. */
  readonly sessionPolicy?: string;
  readonly sessionName: string;
  /** Set once, carried through role chaining, in CloudTrail: the task id. */
  readonly sourceIdentity: string;
  /** Session tags (`aws:PrincipalTag/<key>` in policies). */
  readonly tags: Readonly<Record<string, string>>;
  /** 900..43200, and no more than the IAM role's MaxSessionDuration. */
  readonly durationSeconds: number;
}

/** Role-session credentials: the secret and the token are shown once, never stored. */
export interface AwsSessionCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
  /** `arn:aws:sts::<account>:assumed-role/<role>/<session>`. */
  readonly assumedRoleArn: string;
}

/** The caller STS sees (GetCallerIdentity). */
export interface AwsCallerIdentity {
  readonly account: string;
  readonly arn: string;
  readonly userId: string;
}

/** What core needs from one configured `aws-sts` engine. */
export interface AwsStsEnginePort {
  /** GetCallerIdentity with custos's own principal: checks the default chain found credentials STS accepts. */
  verifyConnection(): Promise<AwsCallerIdentity>;
  assumeRole(request: AwsAssumeRoleRequest): Promise<AwsSessionCredentials>;
  /** `iam:PutRolePolicy`: replaces the role's inline policy `policyName` with `document`. */
  putRolePolicy(roleName: string, policyName: string, document: string): Promise<void>;
  close(): Promise<void>;
}

/** Where an `aws-sts` engine's calls go. */
export interface AwsStsConnectionPort {
  readonly region: string;
  /** The STS endpoint (default: AWS's regional endpoint for `region`). */
  readonly stsEndpoint?: string;
  /** The IAM endpoint (default: AWS's global IAM endpoint). */
  readonly iamEndpoint?: string;
  /** Every call the engine makes goes through this policy. */
  readonly egress?: EgressPolicy;
}

/** Opens an `aws-sts` engine (does not call AWS yet). */
export type AwsStsEngineFactory = (connection: AwsStsConnectionPort) => AwsStsEnginePort;
