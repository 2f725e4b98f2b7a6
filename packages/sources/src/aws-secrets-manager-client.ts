import {
  GetSecretValueCommand,
  ListSecretsCommand,
  ListSecretVersionIdsCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  CustosError,
  type EgressPolicy,
  type SourceClient,
  SourceFault,
  type SourceRecord,
  type SourceVersionInfo,
} from '@custos/core';
import { egressAwsHandler } from './egress-aws-handler.js';

const STAGES: Record<string, SourceVersionInfo['stage']> = {
  AWSCURRENT: 'current',
  AWSPREVIOUS: 'previous',
  AWSPENDING: 'pending',
};
const THROTTLED = new Set(['ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'Throttling']);
/** Refusals of custos's identity: no permission, a key it may not use, or credentials AWS does not accept. */
const DENIED = new Set([
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'DecryptionFailure',
  'MissingAuthenticationTokenException',
]);
const MAX_PAGES = 10;

/**
 * AWS Secrets Manager through `@aws-sdk/client-secrets-manager`. Credentials
 * come from the SDK's default provider chain only (environment, shared
 * config, web identity, container or instance role); every request goes out
 * through the egress handler; the SDK's retries are off (custos retries
 * throttling itself, bounded, in the core).
 */
export class AwsSecretsManagerClient implements SourceClient {
  readonly #client: SecretsManagerClient;
  readonly #prefix: string;

  constructor(record: SourceRecord, egress: EgressPolicy) {
    this.#prefix = record.prefix;
    this.#client = new SecretsManagerClient({
      region: record.region as string,
      maxAttempts: 1,
      requestHandler: egressAwsHandler(egress, record.tls_ca),
      ...(record.endpoint ? { endpoint: record.endpoint } : {}),
    });
  }

  async versions(name: string, signal: AbortSignal): Promise<SourceVersionInfo[]> {
    const out: SourceVersionInfo[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const answer = await this.#send(() =>
        this.#client.send(
          new ListSecretVersionIdsCommand({ SecretId: name, MaxResults: 100, ...(token ? { NextToken: token } : {}) }),
          { abortSignal: signal },
        ),
      );
      for (const v of answer.Versions ?? []) {
        if (!v.VersionId) continue;
        const labels = v.VersionStages ?? [];
        // AWSCURRENT wins when a version carries two labels (the first
        // version of a secret under its first rotation).
        const stage = ['AWSCURRENT', 'AWSPREVIOUS', 'AWSPENDING'].find((l) => labels.includes(l));
        out.push({
          id: v.VersionId,
          ...(stage ? { stage: STAGES[stage] } : {}),
          created_time: (v.CreatedDate ?? new Date(0)).toISOString(),
        });
      }
      token = answer.NextToken;
      if (!token) break;
    }
    return out;
  }

  async read(name: string, versionId: string, signal: AbortSignal) {
    const answer = await this.#send(() =>
      this.#client.send(new GetSecretValueCommand({ SecretId: name, VersionId: versionId }), { abortSignal: signal }),
    );
    if (answer.SecretString !== undefined) return { value: answer.SecretString };
    if (answer.SecretBinary !== undefined) return { value: Buffer.from(answer.SecretBinary).toString('base64') };
    throw new SourceFault('failed');
  }

  async list(limit: number, signal: AbortSignal): Promise<string[]> {
    const names: string[] = [];
    const prefix = this.#prefix;
    let token: string | undefined;
    for (let page = 0; page < Math.ceil(limit / 100) && page < 100; page++) {
      const answer = await this.#send(() =>
        this.#client.send(
          new ListSecretsCommand({
            MaxResults: 100,
            ...(prefix ? { Filters: [{ Key: 'name', Values: [prefix] }] } : {}),
            ...(token ? { NextToken: token } : {}),
          }),
          { abortSignal: signal },
        ),
      );
      for (const s of answer.SecretList ?? []) {
        if (s.Name?.startsWith(prefix) && s.Name.length > prefix.length) names.push(s.Name.slice(prefix.length));
      }
      token = answer.NextToken;
      if (!token || names.length >= limit) break;
    }
    return names.slice(0, limit);
  }

  close(): void {
    this.#client.destroy();
  }

  async #send<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw classifyAwsError(error);
    }
  }
}

/**
 * The SDK's error as a {@link SourceFault}: only its *name* is looked at,
 * and nothing of its message is kept (an AccessDenied message names custos's
 * role ARN and account id).
 */
export function classifyAwsError(error: unknown): Error {
  if (error instanceof CustosError)
    return error.code === 'CUSTOS_ERR_EGRESS_REFUSED' ? error : new SourceFault('failed');
  const name = (error as { name?: unknown })?.name;
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  if (typeof name !== 'string') return new SourceFault('failed');
  if (THROTTLED.has(name) || status === 429) return new SourceFault('throttled');
  if (DENIED.has(name)) return new SourceFault('denied');
  if (name === 'ResourceNotFoundException') return new SourceFault('not_found');
  if (name === 'CredentialsProviderError') return new SourceFault('no_credentials');
  if (name === 'AbortError' || name === 'TimeoutError') return new SourceFault('timeout');
  return new SourceFault('failed');
}
