import { CustosError, type RootKeyWrapper, type RootKeyWrapperTarget, ValidationError } from '@custos/core';
import { AwsKmsKeyWrapper } from './aws-kms/aws-kms-key-wrapper.js';
import { openAwsKmsRotateTarget } from './aws-kms/aws-kms-rotate-target.js';
import { parseAwsKmsSealConfig } from './aws-kms/aws-kms-seal-config.js';
import { AzureKeyVaultKeyWrapper } from './azure-key-vault/azure-key-vault-key-wrapper.js';
import { parseAzureKeyVaultSealConfig } from './azure-key-vault/azure-key-vault-seal-config.js';
import { parsePkcs11SealConfig } from './pkcs11/pkcs11-config.js';
import { Pkcs11KeyWrapper } from './pkcs11/pkcs11-key-wrapper.js';

/** The seal types that auto-unseal through a {@link RootKeyWrapper}. */
export const WRAPPED_SEAL_TYPES = ['pkcs11', 'awskms', 'azurekeyvault', 'aws-kms', 'azure-key-vault'] as const;

/**
 * The spellings of the design document (`aws-kms`, `azure-key-vault`) are
 * accepted as aliases; the wrapper's `type` (stored with the wrapped root
 * key) is always the canonical one, so either spelling opens the same store.
 */
const ALIASES: Readonly<Record<string, string>> = { 'aws-kms': 'awskms', 'azure-key-vault': 'azurekeyvault' };

/** True when `type` names a wrapped seal (as opposed to `dev` or `shamir`). */
export function isWrappedSealType(type: string): boolean {
  return (WRAPPED_SEAL_TYPES as readonly string[]).includes(type);
}

/** Options of {@link createRootKeyWrapper}. */
export interface CreateRootKeyWrapperOptions {
  /** Where credentials named by the config are read (PKCS#11 `pin_env`); default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * `rotate-seal`: open the wrapper for this key instead of the configured
   * one (same library, token and credentials), creating it first if asked.
   */
  readonly target?: RootKeyWrapperTarget;
  /** `operator init --create-key`: create the configured key when it does not exist. */
  readonly createKey?: boolean;
}

/**
 * Maps a `seal: { type, … }` section of the server config to an opened
 * wrapper. One case per wrapped seal type; each validates its own section
 * (`CUSTOS_ERR_SEAL_CONFIG_INVALID`) and reads credentials only from where
 * the section points (an environment variable, the SDK's provider chain),
 * never from the section itself.
 */
export async function createRootKeyWrapper(
  section: Readonly<Record<string, unknown>>,
  options: CreateRootKeyWrapperOptions = {},
): Promise<RootKeyWrapper> {
  const type = typeof section.type === 'string' ? (ALIASES[section.type] ?? section.type) : section.type;
  switch (type) {
    case 'pkcs11': {
      const config = parsePkcs11SealConfig(section);
      // rotate-seal: the request names only a key label; library, slot/token
      // and PIN stay the config's, so the new key is on the same token.
      const keyed = options.target ? { ...config, key_label: options.target.key } : config;
      return Pkcs11KeyWrapper.open(keyed, {
        ...(options.env ? { env: options.env } : {}),
        createKey: options.target ? options.target.createKey : (options.createKey ?? false),
      });
    }
    case 'awskms': {
      // custos does not create KMS keys (their key policy is the operator's to write).
      if (options.target?.createKey || options.createKey) throw cloudKeysAreNotCreated();
      // rotate-seal: the request names the key, so it must stay in the
      // current key's partition, account and region (enforced there, with
      // DescribeKey): else the root key could be wrapped for another account.
      if (options.target) return openAwsKmsRotateTarget({ ...section, type }, options.target.key);
      return new AwsKmsKeyWrapper(parseAwsKmsSealConfig({ ...section, type }));
    }
    case 'azurekeyvault': {
      if (options.target?.createKey || options.createKey) throw cloudKeysAreNotCreated();
      const config = parseAzureKeyVaultSealConfig({ ...section, type });
      if (!options.target) return new AzureKeyVaultKeyWrapper(config);
      // rotate-seal: another key of the same vault. The vault URL is the
      // config's; the request only names a key, and KEY_NAME (letters, digits,
      // dashes) cannot spell a URL, so the root key cannot leave the vault.
      // (A new version of the same key needs no rotate-seal: an unpinned seal
      // wraps with the current version.)
      const { key_version: _pinned, ...rest } = section;
      let target: ReturnType<typeof parseAzureKeyVaultSealConfig>;
      try {
        target = parseAzureKeyVaultSealConfig({ ...rest, type, key_name: options.target.key });
      } catch (error) {
        // The key name came from the request: a 400, not a config fault.
        if (error instanceof CustosError && error.code === 'CUSTOS_ERR_SEAL_CONFIG_INVALID') {
          throw new ValidationError('rotate-seal: key is a Key Vault key name (1 to 127 letters, digits and dashes).');
        }
        throw error;
      }
      return new AzureKeyVaultKeyWrapper(target);
    }
    default:
      throw new CustosError('CUSTOS_ERR_SEAL_CONFIG_INVALID', `Unknown seal type ${String(section.type)}.`);
  }
}

function cloudKeysAreNotCreated(): CustosError {
  return new CustosError(
    'CUSTOS_ERR_SEAL_UNSUPPORTED',
    'custos does not create cloud KMS keys: create the key (and its key policy or access policy) in the cloud, then name it.',
  );
}
