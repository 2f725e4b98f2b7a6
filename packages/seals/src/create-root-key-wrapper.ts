import { CustosError, type RootKeyWrapper, type RootKeyWrapperTarget } from '@custos/core';
import { parsePkcs11SealConfig } from './pkcs11/pkcs11-config.js';
import { Pkcs11KeyWrapper } from './pkcs11/pkcs11-key-wrapper.js';

/** The seal types that auto-unseal through a {@link RootKeyWrapper}. */
export const WRAPPED_SEAL_TYPES = ['pkcs11'] as const;

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
  switch (section.type) {
    case 'pkcs11': {
      const config = parsePkcs11SealConfig(section);
      const keyed = options.target ? { ...config, key_label: options.target.key } : config;
      return Pkcs11KeyWrapper.open(keyed, {
        ...(options.env ? { env: options.env } : {}),
        createKey: options.target ? options.target.createKey : (options.createKey ?? false),
      });
    }
    default:
      throw new CustosError('CUSTOS_ERR_SEAL_CONFIG_INVALID', `Unknown seal type ${String(section.type)}.`);
  }
}
