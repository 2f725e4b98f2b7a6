import { DefaultAzureCredential } from '@azure/identity';
import type { CryptographyClientOptions } from '@azure/keyvault-keys';
import type { AzureTokenServer } from './azure-token-server.js';
import type { TestTls } from './test-tls.js';

const NAMES = [
  'AZURE_TENANT_ID',
  'AZURE_CLIENT_ID',
  'AZURE_CLIENT_SECRET',
  'AZURE_AUTHORITY_HOST',
  'AZURE_CLIENT_CERTIFICATE_PATH',
  'AZURE_USERNAME',
  'AZURE_PASSWORD',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_TOKEN_CREDENTIALS',
  'IDENTITY_ENDPOINT',
  'MSI_ENDPOINT',
];

/**
 * Puts an app registration where DefaultAzureCredential's first link
 * (EnvironmentCredential → ClientSecretCredential) reads it, with
 * AZURE_AUTHORITY_HOST at the local token server. Without `app`, the chain
 * finds nothing and AZURE_TOKEN_CREDENTIALS=prod keeps it to environment,
 * workload and managed identity (the managed identity probe fails fast here:
 * no IMDS), as on a server. Returns a restore function.
 */
export function useAzureEnvironment(
  tokens: AzureTokenServer,
  app?: { clientId: string; clientSecret: string },
): () => void {
  const saved = new Map(NAMES.map((n) => [n, process.env[n]]));
  for (const n of NAMES) delete process.env[n];
  process.env.AZURE_AUTHORITY_HOST = tokens.authorityHost;
  process.env.AZURE_TOKEN_CREDENTIALS = 'prod';
  if (app) {
    process.env.AZURE_TENANT_ID = tokens.tenantId;
    process.env.AZURE_CLIENT_ID = app.clientId;
    process.env.AZURE_CLIENT_SECRET = app.clientSecret;
  }
  return () => {
    for (const [n, v] of saved) {
      if (v === undefined) delete process.env[n];
      else process.env[n] = v;
    }
  };
}

/**
 * The wrapper's deps for the local servers — only transport differs from
 * production:
 * - `tlsOptions.ca`: trust the throwaway test CA (Node 20 cannot add a CA to
 *   a running process; a child process would use NODE_EXTRA_CA_CERTS);
 * - `disableInstanceDiscovery`: MSAL otherwise asks
 *   login.microsoftonline.com whether the authority host is a known cloud,
 *   which is unreachable here;
 * - `disableChallengeResourceVerification`: the SDK checks that the
 *   challenge's resource (`https://vault.azure.net`) is a parent domain of
 *   the vault host; 127.0.0.1 is not, and no name under a test domain
 *   resolves here. The server still issues the real challenge and checks
 *   the token's audience.
 *
 * What does not work, and why no custos server *process* is started against
 * these servers from its config file (as the awskms tests do): in a child
 * process NODE_EXTRA_CA_CERTS would trust the CA, but the production
 * wrapper rightly keeps instance discovery and the challenge-resource check
 * on, and neither can pass on a machine with no route to
 * login.microsoftonline.com and no name under a vault domain. So the
 * Key Vault seal is tested in process, with these transport options
 * injected, and the config path up to the factory.
 */
export function azureTestDeps(tls: TestTls): {
  credential: DefaultAzureCredential;
  clientOptions: CryptographyClientOptions;
} {
  const tlsOptions = { ca: tls.ca };
  return {
    credential: new DefaultAzureCredential({ tlsOptions, disableInstanceDiscovery: true } as ConstructorParameters<
      typeof DefaultAzureCredential
    >[0]),
    clientOptions: { tlsOptions, disableChallengeResourceVerification: true },
  };
}
