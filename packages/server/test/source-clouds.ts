import { createSourceClientFactory } from '@custos/sources';
import { useAwsEnvironment } from '../../seals/src/test-support/aws-env.js';
import { azureTestDeps, useAzureEnvironment } from '../../seals/src/test-support/azure-env.js';
import { type AzureTokenServer, startAzureTokenServer } from '../../seals/src/test-support/azure-token-server.js';
import {
  type KeyVaultWireServer,
  startKeyVaultWireServer,
} from '../../seals/src/test-support/key-vault-wire-server.js';
import {
  type SecretsManagerWireServer,
  startSecretsManagerWireServer,
} from '../../seals/src/test-support/secrets-manager-wire-server.js';
import { createTestTls, type TestTls } from '../../seals/src/test-support/test-tls.js';
import { startTestServer, type TestServer } from './test-server.js';

/**
 * The clouds of the secret-source tests — verified against wire-compatible
 * local servers, not against the clouds: AWS Secrets Manager (SigV4 checked)
 * and Azure Key Vault (Entra ID bearer challenge over TLS), with custos's
 * cloud identity in the environment where the SDKs' default chains look.
 */
export interface SourceClouds {
  sm: SecretsManagerWireServer;
  tls: TestTls;
  tokens: AzureTokenServer;
  vault: KeyVaultWireServer;
  s: TestServer;
  /** Every cloud credential and account detail that must never reach an answer, a log or the audit trail. */
  forbidden(): string[];
  close(): Promise<void>;
}

export async function startSourceClouds(): Promise<SourceClouds> {
  const sm = await startSecretsManagerWireServer();
  const tls = createTestTls();
  const tokens = await startAzureTokenServer(tls);
  const vault = await startKeyVaultWireServer(tls, tokens);
  const restore = [useAwsEnvironment(sm.credentials), useAzureEnvironment(tokens, tokens)];
  const { credential } = azureTestDeps(tls);
  // Only transport differs from production: the test CA for the token
  // server, and the challenge's resource check (127.0.0.1 is not under
  // vault.azure.net). The vault's own CA is the source's tls_ca.
  const sourceFactory = createSourceClientFactory({
    azure: { credential, clientOptions: { disableChallengeResourceVerification: true } },
  });
  const s = await startTestServer('sqlite', { sourceFactory });
  return {
    sm,
    tls,
    tokens,
    vault,
    s,
    forbidden: () => [
      sm.credentials.accessKeyId,
      sm.credentials.secretAccessKey,
      sm.account,
      tokens.clientSecret,
      tokens.clientId,
      tokens.tenantId,
    ],
    close: async () => {
      await s.close();
      await sm.close();
      await vault.close();
      await tokens.close();
      for (const r of restore) r();
    },
  };
}

/** Adds the two sources the tests read through: `aws-prod` (prefix `agents/`) and `azure-prod`. */
export async function addTestSources(c: SourceClouds, extra: { cache_ttl_seconds?: number } = {}): Promise<void> {
  const aws = await c.s.call({
    method: 'PUT',
    url: '/v1/sources/aws-prod',
    payload: {
      type: 'aws-secrets-manager',
      region: c.sm.region,
      prefix: 'agents/',
      endpoint: c.sm.endpoint,
      timeout_ms: 1_500,
      ...extra,
    },
  });
  if (aws.statusCode !== 200) throw new Error(`source add aws-prod: ${aws.body}`);
  const azure = await c.s.call({
    method: 'PUT',
    url: '/v1/sources/azure-prod',
    payload: { type: 'azure-key-vault', vault_url: c.vault.vaultUrl, tls_ca: c.tls.ca, timeout_ms: 1_500, ...extra },
  });
  if (azure.statusCode !== 200) throw new Error(`source add azure-prod: ${azure.body}`);
}
