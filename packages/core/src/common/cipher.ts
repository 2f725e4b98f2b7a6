/**
 * The slice of the barrier a domain service needs: authenticated encryption
 * bound to a row identity. Services depend on this narrow interface, not on
 * the barrier itself, so tests can pass any implementation and services never
 * see keys.
 */
export interface Cipher {
  /** True while the cipher holds no key (a sealed barrier); what was opened before must not be served then either. */
  readonly sealed: boolean;
  encrypt(aad: string, plaintext: Uint8Array): Uint8Array;
  decrypt(aad: string, blob: Uint8Array): Uint8Array;
  /**
   * Like `decrypt`, but a blob written under a keyring term this node has not
   * seen yet (another node rotated) makes it reload the keyring once first.
   * Services read through this one.
   */
  decryptAsync(aad: string, blob: Uint8Array): Promise<Uint8Array>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The AAD of an entry: namespace and key, NUL-separated (keys never contain NUL). */
export function entryAad(namespace: string, key: string): string {
  return `${namespace}\0${key}`;
}

/** Encrypts a JSON value for the entry (namespace, key). */
export function sealJson(cipher: Cipher, namespace: string, key: string, value: unknown): Uint8Array {
  return cipher.encrypt(entryAad(namespace, key), encoder.encode(JSON.stringify(value)));
}

/** Decrypts and parses an entry written by {@link sealJson}; IntegrityError if it was altered or moved. */
export async function openJson<T>(cipher: Cipher, namespace: string, key: string, blob: Uint8Array): Promise<T> {
  return JSON.parse(decoder.decode(await cipher.decryptAsync(entryAad(namespace, key), blob))) as T;
}
