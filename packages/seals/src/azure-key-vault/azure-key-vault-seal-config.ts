import { CustosError } from '@custos/core';

/** `seal: { type: azurekeyvault, vault_url, key_name, key_version? }` as custos reads it. Never a credential. */
export interface AzureKeyVaultSealConfig {
  /** `https://<vault>.vault.azure.net` (or a managed HSM, sovereign cloud or private endpoint URL), origin only. */
  readonly vaultUrl: string;
  readonly keyName: string;
  /** Pins one key version; default the current version at wrap time (the blob records which one). */
  readonly keyVersion?: string;
}

const KEY_NAME = /^[A-Za-z0-9-]{1,127}$/;
const KEY_VERSION = /^[0-9a-f]{32}$/;

/**
 * Validates the `azurekeyvault` seal block. Credential fields are refused
 * rather than ignored: custos takes Azure credentials only from
 * DefaultAzureCredential (environment variables, workload identity, managed
 * identity), never from its own config file.
 */
export function parseAzureKeyVaultSealConfig(raw: Readonly<Record<string, unknown>>): AzureKeyVaultSealConfig {
  const invalid = (detail: string) => new CustosError('CUSTOS_ERR_SEAL_CONFIG_INVALID', detail);
  const allowed = new Set(['type', 'vault_url', 'key_name', 'key_version']);
  for (const k of Object.keys(raw)) {
    if (!allowed.has(k)) {
      throw invalid(
        /secret|client|tenant|token|credential|password|certificate/i.test(k)
          ? `seal.${k}: credentials come from DefaultAzureCredential (environment, workload or managed identity), never from custos's config.`
          : `seal.${k} is not an azurekeyvault option.`,
      );
    }
  }
  const { vault_url: vaultUrl, key_name: keyName, key_version: keyVersion } = raw;
  const origin = vaultOrigin(vaultUrl);
  if (origin === undefined) {
    throw invalid('seal.vault_url must be an https URL without credentials, path, query or fragment.');
  }
  if (typeof keyName !== 'string' || !KEY_NAME.test(keyName)) {
    throw invalid('seal.key_name is 1 to 127 letters, digits and dashes.');
  }
  if (keyVersion !== undefined && (typeof keyVersion !== 'string' || !KEY_VERSION.test(keyVersion))) {
    throw invalid('seal.key_version is a Key Vault key version (32 hexadecimal digits).');
  }
  return { vaultUrl: origin, keyName, ...(keyVersion !== undefined ? { keyVersion: keyVersion as string } : {}) };
}

/**
 * The vault's origin, or undefined. https only: the Azure SDK will not send
 * a bearer token over anything else, and neither should custos.
 */
export function vaultOrigin(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' || url.username || url.password || url.search || url.hash) return undefined;
  if (url.pathname !== '/' && url.pathname !== '') return undefined;
  return url.origin;
}
