import { combine, split } from 'shamir-secret-sharing';
import { KEY_BYTES } from '../barrier/barrier-blob.js';
import { CustosError } from '../errors/index.js';

/**
 * Shamir's secret sharing of the root key, over GF(256), using the
 * independently audited `shamir-secret-sharing` package rather than an
 * in-house implementation. A share is the 32 evaluated bytes followed by its
 * x-coordinate (1..255), 33 bytes, handed to operators as base64.
 */
export const SHARE_BYTES = KEY_BYTES + 1;

/** Splits the root key into `shares` base64 shares, any `threshold` of which rebuild it. */
export async function splitRootKey(rootKey: Uint8Array, shares: number, threshold: number): Promise<string[]> {
  // The library checks `constructor === Uint8Array`, so a Buffer is passed as a
  // plain view over the same bytes (no copy of the key is made).
  const parts = await split(new Uint8Array(rootKey.buffer, rootKey.byteOffset, rootKey.byteLength), shares, threshold);
  // Returned as strings because they are shown to operators once; the byte
  // copies are wiped, the strings cannot be (JavaScript strings are immutable).
  const encoded = parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('base64'));
  for (const p of parts) p.fill(0);
  return encoded;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Decodes one base64 share. Anything that is not exactly a share (bad
 * base64, wrong length, x-coordinate 0, which would be the secret itself)
 * throws `CUSTOS_ERR_INVALID_SHARE`. The message never echoes the input.
 */
export function decodeShare(share: string): Buffer {
  const text = typeof share === 'string' ? share.trim() : '';
  if (!BASE64.test(text) || text.length !== Math.ceil(SHARE_BYTES / 3) * 4) {
    throw new CustosError('CUSTOS_ERR_INVALID_SHARE');
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== SHARE_BYTES || bytes[KEY_BYTES] === 0) {
    bytes.fill(0);
    throw new CustosError('CUSTOS_ERR_INVALID_SHARE');
  }
  return bytes;
}

/** The x-coordinate of a decoded share. */
export function shareX(share: Uint8Array): number {
  return share[KEY_BYTES]!;
}

/** Rebuilds a candidate root key from decoded shares with distinct x-coordinates. Unverified. */
export async function combineShares(shares: readonly Uint8Array[]): Promise<Buffer> {
  const secret = await combine(shares.map((s) => new Uint8Array(s.buffer, s.byteOffset, s.byteLength)));
  const key = Buffer.from(secret);
  secret.fill(0);
  return key;
}
