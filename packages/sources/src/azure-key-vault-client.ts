import type { TokenCredential } from '@azure/identity';
import { DefaultAzureCredential } from '@azure/identity';
import { SecretClient, type SecretClientOptions } from '@azure/keyvault-secrets';
import {
  CustosError,
  type EgressPolicy,
  type SourceClient,
  SourceFault,
  type SourceRecord,
  type SourceVersionInfo,
} from '@custos/core';
import { egressAzureClient } from './egress-azure-client.js';

/** What differs in tests (a test CA, a local authority): transport only. */
export interface AzureSourceOptions {
  credential?: TokenCredential;
  clientOptions?: Pick<SecretClientOptions, 'disableChallengeResourceVerification'>;
}

const MAX_VERSIONS = 1_000;

/**
 * Azure Key Vault secrets through `@azure/keyvault-secrets`. The identity is
 * `DefaultAzureCredential` (environment, workload identity, managed
 * identity…); Key Vault requests go out through the egress client; the
 * SDK's retries are off (custos retries throttling itself, bounded).
 *
 * Versions map onto custos stages by time, since Key Vault has no labels:
 * among enabled versions that are active now (`nbf` passed, `exp` not),
 * the newest is current and the one before it previous; the newest enabled
 * version not active yet (`nbf` in the future) is pending — a rotation
 * staged in the vault.
 */
export class AzureKeyVaultClient implements SourceClient {
  readonly #client: SecretClient;

  constructor(record: SourceRecord, egress: EgressPolicy, options: AzureSourceOptions = {}) {
    this.#client = new SecretClient(record.vault_url as string, options.credential ?? new DefaultAzureCredential(), {
      ...options.clientOptions,
      httpClient: egressAzureClient(egress, record.tls_ca),
      retryOptions: { maxRetries: 0 },
    });
  }

  async versions(name: string, signal: AbortSignal): Promise<SourceVersionInfo[]> {
    const found: { id: string; created: Date; active: boolean; future: boolean }[] = [];
    const now = Date.now();
    await this.#call(async () => {
      for await (const p of this.#client.listPropertiesOfSecretVersions(name, { abortSignal: signal })) {
        if (!p.version || p.enabled === false) continue;
        const future = p.notBefore !== undefined && p.notBefore.getTime() > now;
        const expired = p.expiresOn !== undefined && p.expiresOn.getTime() <= now;
        found.push({ id: p.version, created: p.createdOn ?? new Date(0), active: !future && !expired, future });
        if (found.length >= MAX_VERSIONS) break;
      }
    });
    found.sort((a, b) => a.created.getTime() - b.created.getTime());
    const active = found.filter((v) => v.active);
    const current = active.at(-1);
    const previous = active.at(-2);
    const pending = current ? found.filter((v) => v.future && v.created >= current.created).at(-1) : undefined;
    return found.map((v) => ({
      id: v.id,
      created_time: v.created.toISOString(),
      ...(v === current ? { stage: 'current' as const } : {}),
      ...(v === previous ? { stage: 'previous' as const } : {}),
      ...(v === pending ? { stage: 'pending' as const } : {}),
    }));
  }

  async read(name: string, versionId: string, signal: AbortSignal) {
    const secret = await this.#call(() => this.#client.getSecret(name, { version: versionId, abortSignal: signal }));
    if (secret.value === undefined) throw new SourceFault('failed');
    return {
      value: secret.value,
      ...(secret.properties.contentType ? { content_type: secret.properties.contentType } : {}),
    };
  }

  async list(limit: number, signal: AbortSignal): Promise<string[]> {
    const names: string[] = [];
    await this.#call(async () => {
      for await (const p of this.#client.listPropertiesOfSecrets({ abortSignal: signal })) {
        if (p.enabled !== false) names.push(p.name);
        if (names.length >= limit) break;
      }
    });
    return names;
  }

  async #call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw classifyAzureError(error);
    }
  }
}

/** The SDK's error as a {@link SourceFault}, from its status and name only; the message is not kept. */
export function classifyAzureError(error: unknown): Error {
  if (error instanceof CustosError)
    return error.code === 'CUSTOS_ERR_EGRESS_REFUSED' ? error : new SourceFault('failed');
  const e = error as {
    name?: unknown;
    statusCode?: unknown;
    response?: { headers?: { get(n: string): string | undefined } };
  };
  if (e?.name === 'CredentialUnavailableError') return new SourceFault('no_credentials');
  if (e?.name === 'AuthenticationError') return new SourceFault('denied');
  if (e?.name === 'AbortError') return new SourceFault('timeout');
  switch (e?.statusCode) {
    case 429: {
      const seconds = Number(e.response?.headers?.get('retry-after'));
      return new SourceFault('throttled', Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined);
    }
    case 401:
    case 403:
      return new SourceFault('denied');
    case 404:
      return new SourceFault('not_found');
    default:
      return new SourceFault('failed');
  }
}
