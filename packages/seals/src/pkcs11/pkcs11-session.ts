import { CustosError } from '@custos/core';
import type * as P from 'pkcs11js';
import pkcs11js from 'pkcs11js';
import type { Pkcs11Mechanism, Pkcs11SealConfig } from './pkcs11-config.js';
import { pkcs11Failure } from './pkcs11-errors.js';
import type { Pkcs11Module } from './pkcs11-module.js';

/** The PKCS#11 mechanism of each config value, and the flags the token must grant it. */
export const MECHANISMS: Record<Pkcs11Mechanism, { readonly id: number; readonly flags: readonly number[] }> = {
  'aes-gcm': { id: pkcs11js.CKM_AES_GCM, flags: [pkcs11js.CKF_ENCRYPT, pkcs11js.CKF_DECRYPT] },
  'aes-key-wrap-pad': { id: pkcs11js.CKM_AES_KEY_WRAP_PAD, flags: [pkcs11js.CKF_WRAP, pkcs11js.CKF_UNWRAP] },
};

/** The key attributes each mechanism needs the key to allow. */
const KEY_USAGE: Record<Pkcs11Mechanism, readonly number[]> = {
  'aes-gcm': [pkcs11js.CKA_ENCRYPT, pkcs11js.CKA_DECRYPT],
  'aes-key-wrap-pad': [pkcs11js.CKA_WRAP, pkcs11js.CKA_UNWRAP],
};

/** An open, logged-in session and the wrapping key found in it. */
export interface Pkcs11Handles {
  readonly slot: P.Handle;
  readonly session: P.Handle;
  readonly key: P.Handle;
  /** The token's label (trimmed): stable across slot renumbering, so it names the key in describe(). */
  readonly tokenLabel: string;
}

/**
 * Opens a session on the configured token, logs in as the user and finds
 * the wrapping key, refusing one that could leave the HSM.
 *
 * - no such slot or token label: `CUSTOS_ERR_HSM_TOKEN_NOT_FOUND`;
 * - the token lacks the mechanism (C_GetMechanismInfo): `CUSTOS_ERR_SEAL_MECHANISM_UNSUPPORTED`;
 * - wrong or locked PIN: `CUSTOS_ERR_SEAL_ACCESS_DENIED` (the PIN is never in the error);
 * - no key with that label: `CUSTOS_ERR_SEAL_KEY_NOT_FOUND` — unless `createKey`, then it is generated;
 * - an extractable or non-sensitive key: `CUSTOS_ERR_SEAL_KEY_INSECURE`.
 */
export function openPkcs11Session(
  module: Pkcs11Module,
  config: Pkcs11SealConfig,
  pin: string,
  options: { readonly createKey?: boolean } = {},
): Pkcs11Handles {
  const { pkcs11 } = module;
  const mechanism = config.mechanism ?? 'aes-gcm';
  const slot = findSlot(pkcs11, config);
  const tokenLabel = call(() => pkcs11.C_GetTokenInfo(slot).label.trim());
  checkMechanism(pkcs11, slot, mechanism);
  const session = call(() => pkcs11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
  try {
    try {
      pkcs11.C_Login(session, pkcs11js.CKU_USER, pin);
    } catch (e) {
      // Another session of this process (a second wrapper during
      // rotate-seal) already logged in to this token: login state is per
      // application, so this session is logged in too.
      if (!(e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN)) throw e;
    }
    let key = findKey(pkcs11, session, config.key_label);
    if (key === undefined) {
      if (!options.createKey)
        throw new CustosError('CUSTOS_ERR_SEAL_KEY_NOT_FOUND', `No AES key labelled ${config.key_label}.`);
      key = generateKey(pkcs11, session, config.key_label, mechanism);
    }
    checkKey(pkcs11, session, key, mechanism);
    return { slot, session, key, tokenLabel };
  } catch (e) {
    try {
      pkcs11.C_CloseSession(session);
    } catch {
      // The session may already be gone with the token.
    }
    throw pkcs11Failure(e);
  }
}

function findSlot(pkcs11: P.PKCS11, config: Pkcs11SealConfig): P.Handle {
  const slots = call(() => pkcs11.C_GetSlotList(true));
  for (const slot of slots) {
    if (config.slot !== undefined) {
      if (slot.readUIntLE(0, Math.min(slot.length, 6)) === config.slot) return slot;
      continue;
    }
    let label: string;
    try {
      label = pkcs11.C_GetTokenInfo(slot).label.trim();
    } catch {
      continue; // a slot whose token went away meanwhile
    }
    if (label === config.token_label) return slot;
  }
  throw new CustosError(
    'CUSTOS_ERR_HSM_TOKEN_NOT_FOUND',
    config.slot !== undefined ? `No token in slot ${config.slot}.` : `No token labelled ${config.token_label}.`,
  );
}

function checkMechanism(pkcs11: P.PKCS11, slot: P.Handle, mechanism: Pkcs11Mechanism): void {
  const { id, flags } = MECHANISMS[mechanism];
  let info: P.MechanismInfo;
  try {
    info = pkcs11.C_GetMechanismInfo(slot, id);
  } catch {
    throw new CustosError('CUSTOS_ERR_SEAL_MECHANISM_UNSUPPORTED', `The token has no ${mechanism}.`);
  }
  if (!flags.every((flag) => (info.flags & flag) !== 0)) {
    throw new CustosError(
      'CUSTOS_ERR_SEAL_MECHANISM_UNSUPPORTED',
      `The token does not allow ${mechanism} for ${mechanism === 'aes-gcm' ? 'encryption' : 'key wrapping'}.`,
    );
  }
}

function findKey(pkcs11: P.PKCS11, session: P.Handle, label: string): P.Handle | undefined {
  pkcs11.C_FindObjectsInit(session, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_LABEL, value: label },
  ]);
  let found: P.Handle[];
  try {
    found = pkcs11.C_FindObjects(session, 2);
  } finally {
    pkcs11.C_FindObjectsFinal(session);
  }
  // Two keys under one label: which one wraps the root key would depend on
  // the token's enumeration order. Refuse rather than guess.
  if (found.length > 1) throw new CustosError('CUSTOS_ERR_SEAL_CONFIG_INVALID', `More than one key labelled ${label}.`);
  return found[0];
}

/**
 * The key must never be able to leave the HSM: CKA_EXTRACTABLE false and
 * CKA_SENSITIVE true. A key that could be exported would make the HSM a key
 * file with extra steps — whoever could log in once could copy it and then
 * unwrap the root key from any backup forever. Refused, not warned about.
 */
function checkKey(pkcs11: P.PKCS11, session: P.Handle, key: P.Handle, mechanism: Pkcs11Mechanism): void {
  const usage = KEY_USAGE[mechanism];
  const attrs = pkcs11.C_GetAttributeValue(session, key, [
    { type: pkcs11js.CKA_KEY_TYPE },
    { type: pkcs11js.CKA_EXTRACTABLE },
    { type: pkcs11js.CKA_SENSITIVE },
    ...usage.map((type) => ({ type })),
  ]);
  const [keyType, extractable, sensitive, ...allowed] = attrs.map((a) => a.value as Buffer);
  if (keyType!.readUIntLE(0, Math.min(keyType!.length, 6)) !== pkcs11js.CKK_AES) {
    throw new CustosError('CUSTOS_ERR_SEAL_KEY_NOT_FOUND', 'The key with that label is not an AES key.');
  }
  if (extractable![0] !== 0 || sensitive![0] !== 1) {
    throw new CustosError(
      'CUSTOS_ERR_SEAL_KEY_INSECURE',
      extractable![0] !== 0 ? 'CKA_EXTRACTABLE is true.' : 'CKA_SENSITIVE is false.',
    );
  }
  if (!allowed.every((a) => a[0] === 1)) {
    throw new CustosError('CUSTOS_ERR_SEAL_MECHANISM_UNSUPPORTED', `The key does not allow ${mechanism}.`);
  }
}

/**
 * Generates the wrapping key inside the token: AES-256, a token object,
 * private, non-extractable and sensitive from birth (so CKA_NEVER_EXTRACTABLE
 * and CKA_ALWAYS_SENSITIVE hold), allowed only what the mechanism needs.
 */
function generateKey(pkcs11: P.PKCS11, session: P.Handle, label: string, mechanism: Pkcs11Mechanism): P.Handle {
  return pkcs11.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN, parameter: undefined }, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    ...KEY_USAGE[mechanism].map((type) => ({ type, value: true })),
  ]);
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw pkcs11Failure(e);
  }
}
