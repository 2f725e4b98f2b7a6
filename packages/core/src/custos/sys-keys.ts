import { type Cipher, entryAad } from '../common/cipher.js';
import type { EntryStore } from '../ports/storage.js';

/** The namespace node-wide keys live in. */
export const SYS_KEY_NAMESPACE = 'sys';
const NS = SYS_KEY_NAMESPACE;

/**
 * Loads a node-wide key kept behind the barrier in the `sys` namespace,
 * creating it on first unseal. Creation uses putIfAbsent and then re-reads,
 * so two nodes starting together agree on one key.
 */
export async function loadOrCreateSysKey(
  entries: EntryStore,
  cipher: Cipher,
  key: string,
  create: () => Uint8Array,
): Promise<Uint8Array> {
  const aad = entryAad(NS, key);
  const existing = await entries.get(NS, key);
  if (existing) return cipher.decryptAsync(aad, existing.value);
  await entries.putIfAbsent(NS, key, cipher.encrypt(aad, create()));
  const stored = await entries.get(NS, key);
  if (!stored) throw new Error(`system key ${key} vanished`);
  return cipher.decryptAsync(aad, stored.value);
}
