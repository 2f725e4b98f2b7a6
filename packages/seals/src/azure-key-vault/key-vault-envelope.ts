import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { IntegrityError } from '@custos/core';

/**
 * The stored form of a root key sealed with an Azure Key Vault key:
 *
 * ```
 * 0x01 | u16 len | kid (utf-8) | u16 len | data key wrapped by Key Vault
 *      | iv (12) | tag (16) | AES-256-GCM(root key)
 * ```
 *
 * Why an envelope: Key Vault's wrapKey/unwrapKey (RSA-OAEP-256) take no
 * associated data, so wrapping the root key directly would not bind the
 * `aad` custos passes (seal configuration, key identity) — a wrapped root
 * key could be moved to another keyring record and still unwrap. So Key
 * Vault wraps a fresh random 256-bit data key, and the root key is
 * encrypted under that data key with AES-256-GCM whose AAD is the key id
 * and custos's `aad`. Changing the blob, the kid, or presenting it with
 * another `aad` fails the GCM tag. The data key exists in memory only while
 * one wrap or unwrap runs.
 */
export interface KeyVaultEnvelope {
  /** The versioned key id that wrapped the data key. */
  readonly kid: string;
  readonly wrappedDataKey: Uint8Array;
  readonly iv: Uint8Array;
  readonly tag: Uint8Array;
  readonly ciphertext: Uint8Array;
}

const VERSION = 1;
const LABEL = 'custos-azure-key-vault-seal/v1';

function gcmAad(kid: string, aad: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${LABEL}\0${kid}\0`, 'utf8'), aad]);
}

/** Encrypts `rootKey` under `dataKey`; the caller wraps `dataKey` with Key Vault. */
export function sealEnvelope(
  rootKey: Uint8Array,
  dataKey: Uint8Array,
  aad: Uint8Array,
  kid: string,
): Omit<KeyVaultEnvelope, 'wrappedDataKey'> {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
  cipher.setAAD(gcmAad(kid, aad));
  const ciphertext = Buffer.concat([cipher.update(rootKey), cipher.final()]);
  return { kid, iv, tag: cipher.getAuthTag(), ciphertext };
}

/** Decrypts the root key; {@link IntegrityError} when anything does not match. */
export function openEnvelope(envelope: KeyVaultEnvelope, dataKey: Uint8Array, aad: Uint8Array): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, envelope.iv);
    decipher.setAAD(gcmAad(envelope.kid, aad));
    decipher.setAuthTag(envelope.tag);
    return Buffer.concat([decipher.update(envelope.ciphertext), decipher.final()]);
  } catch {
    throw new IntegrityError();
  }
}

export function encodeEnvelope(e: KeyVaultEnvelope): Uint8Array {
  const kid = Buffer.from(e.kid, 'utf8');
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return b;
  };
  return Buffer.concat([
    Buffer.from([VERSION]),
    u16(kid.length),
    kid,
    u16(e.wrappedDataKey.length),
    e.wrappedDataKey,
    e.iv,
    e.tag,
    e.ciphertext,
  ]);
}

/** Parses a stored envelope; storage is untrusted, so anything malformed is an {@link IntegrityError}. */
export function decodeEnvelope(bytes: Uint8Array): KeyVaultEnvelope {
  const b = Buffer.from(bytes);
  let at = 0;
  const take = (n: number) => {
    if (n < 0 || at + n > b.length) throw new IntegrityError();
    const out = b.subarray(at, at + n);
    at += n;
    return out;
  };
  if (take(1)[0] !== VERSION) throw new IntegrityError();
  const kid = take(take(2).readUInt16BE()).toString('utf8');
  const wrappedDataKey = take(take(2).readUInt16BE());
  const iv = take(12);
  const tag = take(16);
  const ciphertext = take(b.length - at);
  if (ciphertext.length === 0 || wrappedDataKey.length === 0) throw new IntegrityError();
  return { kid, wrappedDataKey, iv, tag, ciphertext };
}
