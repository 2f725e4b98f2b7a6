import { IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import {
  AssumeRoleCommand,
  type AssumeRoleCommandOutput,
  GetCallerIdentityCommand,
  STSClient,
} from '@aws-sdk/client-sts';
import {
  type AwsAssumeRoleRequest,
  type AwsCallerIdentity,
  type AwsSessionCredentials,
  type AwsStsConnectionPort,
  type AwsStsEnginePort,
  CustosError,
  EgressPolicy,
} from '@custos/core';
import { awsCallError } from './aws-call-error.js';
import { EgressHttpHandler } from './egress-http-handler.js';

/** Throttling and 5xx are retried by the SDK's standard mode (backoff with jitter) this many times in all. */
const MAX_ATTEMPTS = 3;

/**
 * The `aws-sts` engine: per-task AWS role sessions.
 *
 * - custos's own IAM principal comes only from the SDK's default provider
 *   chain (environment, shared config, web identity, container or instance
 *   role). The engine never receives a credential and stores none: there is
 *   no root credential to rotate or leak from custos's storage.
 * - Every call goes through the egress policy ({@link EgressHttpHandler}).
 * - Errors carry the AWS error name and custos's words only
 *   ({@link awsCallError}): an AssumeRole answer holds credentials, so
 *   nothing of the SDK's error objects is passed on.
 */
export class AwsStsEngine implements AwsStsEnginePort {
  readonly #sts: STSClient;
  readonly #iam: IAMClient;

  constructor(connection: AwsStsConnectionPort) {
    const requestHandler = new EgressHttpHandler(connection.egress ?? new EgressPolicy());
    const common = { maxAttempts: MAX_ATTEMPTS, retryMode: 'standard' as const, requestHandler };
    this.#sts = new STSClient({
      ...common,
      region: connection.region,
      ...(connection.stsEndpoint ? { endpoint: connection.stsEndpoint } : {}),
    });
    // IAM is a global service signed for us-east-1 (aws-cn and aws-us-gov
    // partitions set their own endpoint, and the region with it).
    this.#iam = new IAMClient({
      ...common,
      region: connection.region.startsWith('cn-')
        ? 'cn-north-1'
        : connection.region.startsWith('us-gov-')
          ? 'us-gov-west-1'
          : 'us-east-1',
      ...(connection.iamEndpoint ? { endpoint: connection.iamEndpoint } : {}),
    });
  }

  async verifyConnection(): Promise<AwsCallerIdentity> {
    try {
      const out = await this.#sts.send(new GetCallerIdentityCommand({}));
      return { account: out.Account ?? '', arn: out.Arn ?? '', userId: out.UserId ?? '' };
    } catch (error) {
      throw awsCallError(error, 'sts:GetCallerIdentity with custos’s own principal');
    }
  }

  async assumeRole(request: AwsAssumeRoleRequest): Promise<AwsSessionCredentials> {
    let out: AssumeRoleCommandOutput;
    try {
      out = await this.#sts.send(
        new AssumeRoleCommand({
          RoleArn: request.roleArn,
          RoleSessionName: request.sessionName,
          DurationSeconds: request.durationSeconds,
          SourceIdentity: request.sourceIdentity,
          Tags: Object.entries(request.tags).map(([Key, Value]) => ({ Key, Value })),
          ...(request.sessionPolicy ? { Policy: request.sessionPolicy } : {}),
        }),
      );
    } catch (error) {
      throw awsCallError(error, `sts:AssumeRole on ${request.roleArn}`);
    }
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
      throw new CustosError('CUSTOS_ERR_AWS_UNAVAILABLE', `sts:AssumeRole on ${request.roleArn}: no credentials.`);
    }
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
      assumedRoleArn: out.AssumedRoleUser?.Arn ?? '',
    };
  }

  async putRolePolicy(roleName: string, policyName: string, document: string): Promise<void> {
    try {
      await this.#iam.send(
        new PutRolePolicyCommand({ RoleName: roleName, PolicyName: policyName, PolicyDocument: document }),
      );
    } catch (error) {
      throw awsCallError(error, `iam:PutRolePolicy on role ${roleName}`);
    }
  }

  async close(): Promise<void> {
    this.#sts.destroy();
    this.#iam.destroy();
  }
}

/**
 * Opens an `aws-sts` engine (no call to AWS yet; `verifyConnection()` makes one).
 *
 * @example
 * const engine = createAwsStsEngine({ region: 'eu-west-1', egress });
 * await engine.verifyConnection();
 */
export function createAwsStsEngine(connection: AwsStsConnectionPort): AwsStsEnginePort {
  return new AwsStsEngine(connection);
}
