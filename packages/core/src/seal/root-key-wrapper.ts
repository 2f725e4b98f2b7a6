/**
 * An auto-unseal seal: the root key is stored wrapped (encrypted) by a key
 * that never leaves a root of trust — an HSM reached over PKCS#11, AWS KMS,
 * or an Azure Key Vault key — and custos asks that root of trust to unwrap
 * it at start. The key-encryption key is not extractable, so a copy of the
 * storage alone (or of a backup) opens nothing.
 *
 * Implementations live in `@custos/seals`, which holds the native and cloud
 * SDK dependencies so the core stays free of them.
 */
export interface RootKeyWrapper {
  /** The seal type this wrapper implements, as written in the server config (`pkcs11`, `awskms`, `azurekeyvault`). */
  readonly type: string;
  /**
   * Non-secret identity of the key-encryption key (key label and slot, key
   * ARN, key id and version). Stored with the wrapped root key and bound into
   * its authenticated data, so a wrapped key cannot be replayed under
   * another key's name. Never contains a PIN, a token or a credential.
   */
  describe(): Readonly<Record<string, string>>;
  /** Encrypts the root key under the key-encryption key, binding `aad`. */
  wrap(rootKey: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  /** Reverses {@link wrap}; throws when the blob, the key or `aad` does not match. */
  unwrap(wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  /** Releases sessions and connections (HSM session, HTTP agents). */
  close(): Promise<void>;
}

/**
 * Optional capability: a cheap check that the root of trust is still there
 * (HSM session alive and the key present; KMS key enabled). A running server
 * calls it periodically; when it throws, custos seals itself (keys zeroed,
 * requests refused with `CUSTOS_ERR_SEAL_UNAVAILABLE`) and unseals again,
 * without a restart, once the wrapper unwraps the stored root key again.
 *
 * Implementations should try to recover (reopen a session, log in again)
 * before throwing, and throw a `CustosError` with a stable code.
 */
export interface RootKeyWrapperHealth {
  checkHealth(): Promise<void>;
}

/** True when `wrapper` implements {@link RootKeyWrapperHealth}. */
export function hasHealthCheck(wrapper: RootKeyWrapper): wrapper is RootKeyWrapper & RootKeyWrapperHealth {
  return typeof (wrapper as Partial<RootKeyWrapperHealth>).checkHealth === 'function';
}

/**
 * What `rotate-seal` asks for: the root key re-wrapped under another key of
 * the same root of trust. `key` is the new key's name in the wrapper's terms
 * (a PKCS#11 key label, a KMS key id or ARN); `createKey` asks the wrapper
 * to create it (non-extractable) first, where the root of trust allows it.
 */
export interface RootKeyWrapperTarget {
  readonly key: string;
  readonly createKey: boolean;
}

/** Opens a wrapper of the configured type for another key (see {@link RootKeyWrapperTarget}). */
export type RootKeyWrapperRekey = (target: RootKeyWrapperTarget) => Promise<RootKeyWrapper>;
