import { CustosError } from '@custos/core';

/** The wrapping mechanisms custos uses, as written in the config. */
export type Pkcs11Mechanism = 'aes-gcm' | 'aes-key-wrap-pad';

/** The default: AES-GCM is an AEAD, so the AAD is bound by the token itself (see docs/seals.md). */
export const DEFAULT_PKCS11_MECHANISM: Pkcs11Mechanism = 'aes-gcm';

/**
 * `seal: { type: pkcs11, … }` in the server config. The PIN is not here:
 * only the NAME of the environment variable holding it (`pin_env`), so a
 * config file, a backup of it or a `ps` listing never carries the PIN.
 */
export interface Pkcs11SealConfig {
  readonly type: 'pkcs11';
  /** Path of the PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`). */
  readonly library: string;
  /** The slot id; or `token_label` (one of the two). */
  readonly slot?: number;
  readonly token_label?: string;
  /** Name of the environment variable that holds the user PIN. */
  readonly pin_env: string;
  /** CKA_LABEL of the AES key that wraps the root key. */
  readonly key_label: string;
  /** Default `aes-gcm`. */
  readonly mechanism?: Pkcs11Mechanism;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const FIELDS = new Set(['type', 'library', 'slot', 'token_label', 'pin_env', 'key_label', 'mechanism', 'pin']);

function invalid(detail: string): CustosError {
  return new CustosError('CUSTOS_ERR_SEAL_CONFIG_INVALID', detail);
}

/**
 * Validates a `pkcs11` seal section. A `pin` field is refused outright
 * (rather than ignored) so that a PIN written into a config file by mistake
 * is noticed — the error names the field, never its value.
 */
export function parsePkcs11SealConfig(raw: Readonly<Record<string, unknown>>): Pkcs11SealConfig {
  for (const name of Object.keys(raw)) if (!FIELDS.has(name)) throw invalid(`Unknown field seal.${name}.`);
  if ('pin' in raw)
    throw invalid('seal.pin is not accepted: put the PIN in an environment variable and name it in seal.pin_env.');
  const { library, slot, token_label: tokenLabel, pin_env: pinEnv, key_label: keyLabel, mechanism } = raw;
  if (typeof library !== 'string' || library === '') throw invalid('seal.library is required.');
  if ((slot === undefined) === (tokenLabel === undefined))
    throw invalid('Give exactly one of seal.slot and seal.token_label.');
  if (slot !== undefined && (!Number.isSafeInteger(slot) || (slot as number) < 0))
    throw invalid('seal.slot is a slot id.');
  if (tokenLabel !== undefined && (typeof tokenLabel !== 'string' || tokenLabel === '' || tokenLabel.length > 32)) {
    throw invalid('seal.token_label is 1 to 32 characters.');
  }
  if (typeof pinEnv !== 'string' || !ENV_NAME.test(pinEnv))
    throw invalid('seal.pin_env is the name of an environment variable.');
  if (typeof keyLabel !== 'string' || keyLabel === '' || keyLabel.length > 128)
    throw invalid('seal.key_label is required.');
  if (mechanism !== undefined && mechanism !== 'aes-gcm' && mechanism !== 'aes-key-wrap-pad') {
    throw invalid('seal.mechanism is aes-gcm or aes-key-wrap-pad.');
  }
  return {
    type: 'pkcs11',
    library,
    ...(slot !== undefined ? { slot: slot as number } : { token_label: tokenLabel as string }),
    pin_env: pinEnv,
    key_label: keyLabel,
    mechanism: (mechanism as Pkcs11Mechanism | undefined) ?? DEFAULT_PKCS11_MECHANISM,
  };
}

/** Reads the PIN from the environment variable the config names. The PIN is returned, never logged. */
export function readPin(config: Pkcs11SealConfig, env: NodeJS.ProcessEnv = process.env): string {
  const pin = env[config.pin_env];
  if (pin === undefined || pin === '')
    throw invalid(`The environment variable ${config.pin_env} (seal.pin_env) is not set.`);
  return pin;
}
