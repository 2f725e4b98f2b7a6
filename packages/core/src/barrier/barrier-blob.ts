import { createCipheriv, createDecipheriv } from 'node:crypto';
import { randomNonSecretBytes } from '../common/random-pool.js';
import { IntegrityError } from '../errors/index.js';

/**
 * The barrier's ciphertext format, version 1:
 *
 * ```
 * [0x01][term u32 BE][nonce 12][ciphertext][tag 16]
 * ```
 *
 * AES-256-GCM with a fresh random 96-bit nonce per blob. The GCM additional
 * data is `header (5 bytes) || UTF-8(aad)`: the header is authenticated so the
 * version and the key term cannot be altered, and the caller's `aad` names the
 * row the blob belongs to so a blob copied to another row fails to open. The
 * header has a fixed length, so the concatenation is unambiguous.
 */
export const BLOB_VERSION = 0x01;
export const BLOB_HEADER_BYTES = 5;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const KEY_BYTES = 32;
/** Smallest possible blob: header, nonce and tag around an empty plaintext. */
export const MIN_BLOB_BYTES = BLOB_HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
/** Terms are u32 and start at 1 (0 is never issued, so a zeroed header is never valid). */
export const MAX_TERM = 0xffff_ffff;

const ALGORITHM = 'aes-256-gcm';

function gcmAad(header: Uint8Array, aad: string): Buffer {
  return Buffer.concat([header, Buffer.from(aad, 'utf8')]);
}

/**
 * Encrypts `plaintext` under `key` (32 bytes) as a version-1 blob of `term`.
 *
 * Random nonces: with 96 random bits the chance of a repeat stays negligible
 * for up to about 2^32 blobs per key, far above what one term sees between
 * rotations; a counter would need coordinated state across nodes, randomness
 * does not.
 */
export function sealBlob(key: Uint8Array, term: number, aad: string, plaintext: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(MIN_BLOB_BYTES + plaintext.length);
  out[0] = BLOB_VERSION;
  out.writeUInt32BE(term, 1);
  const header = out.subarray(0, BLOB_HEADER_BYTES);
  // A nonce must never repeat under one key, and need not be secret: a fresh 96-bit random value from the pool.
  const nonce = randomNonSecretBytes(NONCE_BYTES);
  nonce.copy(out, BLOB_HEADER_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(gcmAad(header, aad));
  const body = cipher.update(plaintext);
  const final = cipher.final();
  let at = BLOB_HEADER_BYTES + NONCE_BYTES;
  body.copy(out, at);
  at += body.length;
  final.copy(out, at);
  at += final.length;
  cipher.getAuthTag().copy(out, at);
  return out;
}

/**
 * The key term a blob names, read from its (not yet authenticated) header.
 * Only used to pick the key; the header is authenticated when the blob is
 * opened. Throws {@link IntegrityError} for a blob that cannot be version 1.
 */
export function blobTerm(blob: Uint8Array): number {
  if (blob.length < MIN_BLOB_BYTES || blob[0] !== BLOB_VERSION) throw new IntegrityError();
  const term = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).readUInt32BE(1);
  if (term === 0) throw new IntegrityError();
  return term;
}

/**
 * Decrypts a version-1 blob with `key`. Any failure (wrong key, other row's
 * AAD, a flipped bit anywhere) is the same {@link IntegrityError} with a fixed
 * message: telling the causes apart would help an attacker probe.
 */
export function openBlob(key: Uint8Array, aad: string, blob: Uint8Array): Buffer {
  blobTerm(blob);
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const header = buf.subarray(0, BLOB_HEADER_BYTES);
  const nonce = buf.subarray(BLOB_HEADER_BYTES, BLOB_HEADER_BYTES + NONCE_BYTES);
  const body = buf.subarray(BLOB_HEADER_BYTES + NONCE_BYTES, buf.length - TAG_BYTES);
  const tag = buf.subarray(buf.length - TAG_BYTES);
  let first: Buffer | undefined;
  try {
    // authTagLength pins the tag to 16 bytes: without it Node accepts a
    // truncated tag (down to 4 bytes), which makes forgeries far cheaper.
    const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(gcmAad(header, aad));
    decipher.setAuthTag(tag);
    first = decipher.update(body);
    const last = decipher.final();
    if (last.length === 0) return first;
    const out = Buffer.concat([first, last]);
    first.fill(0);
    return out;
  } catch {
    // GCM hands out plaintext before the tag is checked: wipe it, it is unauthenticated.
    first?.fill(0);
    // No cause attached: the OpenSSL message adds nothing safe to say.
    throw new IntegrityError();
  }
}
