import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** `n` random lowercase alphanumerics (rejection sampling: no modulo bias). */
function randomAlnum(n: number): string {
  let out = '';
  while (out.length < n) {
    for (const byte of randomBytes(n * 2)) {
      if (byte < 252 && out.length < n) out += ALPHABET[byte % 36];
    }
  }
  return out;
}

/**
 * A fresh user name `custos_<prefix>_<random>` of at most `maxLength`
 * characters (32 fits MySQL 5.7/8's limit; PostgreSQL allows 63). The prefix
 * is folded to lowercase alnum/underscore and shortened so that 16 random
 * characters (~82 bits) always remain: names never collide by chance.
 */
export function generateUsername(prefix: string, maxLength: number): string {
  const random = randomAlnum(16);
  const room = Math.max(0, maxLength - 'custos_'.length - 1 - random.length);
  const cleaned = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, room)
    .replace(/_+$/, '');
  return cleaned ? `custos_${cleaned}_${random}` : `custos_${random}`;
}

/** A strong random password: 32 bytes (256 bits) as 43 base64url characters, no quotes or backslashes. */
export function generatePassword(): string {
  return randomBytes(32).toString('base64url');
}
