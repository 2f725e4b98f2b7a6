import { CustosError } from '@custos/core';
import pkcs11js from 'pkcs11js';

/** PIN and login failures: the credentials are wrong or locked, not the HSM. */
const ACCESS_DENIED = new Set([
  pkcs11js.CKR_PIN_INCORRECT,
  pkcs11js.CKR_PIN_INVALID,
  pkcs11js.CKR_PIN_LEN_RANGE,
  pkcs11js.CKR_PIN_EXPIRED,
  pkcs11js.CKR_PIN_LOCKED,
  pkcs11js.CKR_USER_PIN_NOT_INITIALIZED,
]);

/** The ciphertext or its AAD does not match: a tampered blob or the wrong key behind the label. */
const INTEGRITY = new Set([
  pkcs11js.CKR_ENCRYPTED_DATA_INVALID,
  pkcs11js.CKR_ENCRYPTED_DATA_LEN_RANGE,
  pkcs11js.CKR_WRAPPED_KEY_INVALID,
  pkcs11js.CKR_WRAPPED_KEY_LEN_RANGE,
]);

/**
 * Maps a PKCS#11 failure to a custos error with a stable code. The detail is
 * the CKR_ name only: never the PIN (which PKCS#11 never echoes anyway),
 * never data.
 */
export function pkcs11Failure(error: unknown): CustosError {
  if (error instanceof CustosError) return error;
  if (error instanceof pkcs11js.Pkcs11Error) {
    const name = ckrName(error.code);
    if (ACCESS_DENIED.has(error.code)) return new CustosError('CUSTOS_ERR_SEAL_ACCESS_DENIED', `${name}.`);
    if (INTEGRITY.has(error.code)) return new CustosError('CUSTOS_ERR_INTEGRITY');
    return new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', `${name}.`);
  }
  return new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE');
}

function ckrName(code: number): string {
  for (const [name, value] of Object.entries(pkcs11js)) {
    if (name.startsWith('CKR_') && value === code) return name;
  }
  return `CKR 0x${code.toString(16)}`;
}
