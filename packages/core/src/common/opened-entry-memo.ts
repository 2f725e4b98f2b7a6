import { SealedError } from '../errors/errors.js';
import { type Cipher, entryAad } from './cipher.js';

const decoder = new TextDecoder();

/** Blobs larger than this are opened every time: the memo is for small, hot records. */
const MAX_MEMO_BLOB_BYTES = 16 * 1024;
/** What one memo may hold in blobs and JSON text, roughly (UTF-16 text counted at 2 bytes a character). */
const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;

interface Opened {
  readonly blob: Buffer;
  readonly json: string;
}

/**
 * Remembers the decrypted JSON of recently opened *records* (token entries,
 * secret metadata, task records, roles), so a hot record read on every
 * request is decrypted once rather than every time. AES-GCM decryption with
 * a fresh decipher costs several microseconds; this costs a byte comparison.
 *
 * **Why it is safe.** A memo hit needs the *exact stored bytes* for the same
 * (namespace, key): the same ciphertext under the same row-binding AAD, so
 * the same plaintext a decryption would give. A changed, moved or tampered
 * blob does not match and is decrypted (and integrity-checked) as usual. The
 * caller still reads the row from storage every time, so what is current in
 * storage, on any node, is what counts.
 *
 * **Not for secret values.** Only records go here; a secret's value is
 * decrypted per read and never kept, so the memo holds nothing that is not
 * already in the process's working set (a token entry holds the token's
 * accessor and policies, never the token). It belongs to the services of one
 * unsealed barrier and is dropped with them when the node seals.
 *
 * Each hit parses the JSON again, so callers get a fresh object they may change.
 */
export class OpenedEntryMemo {
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #opened = new Map<string, Opened>();
  #bytes = 0;

  constructor(maxEntries = 4_096, maxBytes = DEFAULT_MAX_BYTES) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  /** Like {@link openJson}: decrypts and parses the entry (namespace, key), unless these bytes were opened before. */
  async openJson<T>(cipher: Cipher, namespace: string, key: string, blob: Uint8Array): Promise<T> {
    // Sealed means nothing behind the barrier is served, remembered or not.
    if (cipher.sealed) throw new SealedError();
    const aad = entryAad(namespace, key);
    const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    const hit = this.#opened.get(aad);
    if (hit?.blob.equals(bytes)) return JSON.parse(hit.json) as T;
    const json = decoder.decode(await cipher.decryptAsync(aad, blob));
    const value = JSON.parse(json) as T;
    this.#forget(aad);
    if (bytes.byteLength <= MAX_MEMO_BLOB_BYTES) {
      const opened = { blob: Buffer.from(bytes), json };
      this.#opened.set(aad, opened);
      this.#bytes += cost(aad, opened);
      // Oldest first out: Map iteration order is insertion order.
      for (const oldest of this.#opened.keys()) {
        if (this.#opened.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) break;
        this.#forget(oldest);
      }
    }
    return value;
  }

  #forget(aad: string): void {
    const opened = this.#opened.get(aad);
    if (!opened) return;
    this.#opened.delete(aad);
    this.#bytes -= cost(aad, opened);
  }
}

const cost = (aad: string, opened: Opened) => 2 * (aad.length + opened.json.length) + opened.blob.byteLength;
