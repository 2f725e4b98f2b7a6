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
