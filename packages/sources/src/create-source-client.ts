import type { SourceClientFactory } from '@custos/core';
import { AwsSecretsManagerClient } from './aws-secrets-manager-client.js';
import { AzureKeyVaultClient, type AzureSourceOptions } from './azure-key-vault-client.js';

/** Options of {@link createSourceClientFactory}; production passes none. */
export interface SourceClientFactoryOptions {
  /** Azure: transport differences for tests (a test CA, challenge verification off for 127.0.0.1). */
  azure?: AzureSourceOptions;
}

/**
 * The factory custos's node opens source clients with (`sourceFactory`).
 *
 * @example
 * new CustosNode({ …, sourceFactory: createSourceClientFactory() });
 */
export function createSourceClientFactory(options: SourceClientFactoryOptions = {}): SourceClientFactory {
  return (record, { egress }) =>
    record.type === 'aws-secrets-manager'
      ? new AwsSecretsManagerClient(record, egress)
      : new AzureKeyVaultClient(record, egress, options.azure);
}
