import { randomBytes } from 'node:crypto';
import { ValidationError } from '../errors/index.js';
import type { SecretData } from '../secrets/index.js';
import type { HoneytokenKind } from './honeytoken-types.js';

const UPPER_BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * `length` characters drawn uniformly from `alphabet` (rejection sampling,
 * so no character is likelier than another: a decoy must not be told apart
 * from a real key by its letter frequencies).
 */
export function randomString(alphabet: string, length: number): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte >= limit) continue;
      out += alphabet[byte % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Where a `db-url` decoy points: a registered engine's host, or one the operator names. */
export interface DecoyDatabase {
  readonly scheme: 'postgres' | 'mysql';
  readonly host: string;
  readonly port: number;
}

/**
 * The decoy value of a new honeytoken: fresh randomness every time, shaped
 * exactly as the real credential is, so custos's own detectors (and anyone
 * else's) take it for one. Field names are the usual ones for that kind of
 * secret. Which fields are secret (fingerprinted) is returned beside the data.
 */
export function generateDecoy(
  kind: HoneytokenKind,
  path: string,
  database?: DecoyDatabase,
): { data: SecretData; secretFields: string[] } {
  switch (kind) {
    case 'aws':
      // An access key id is AKIA + 16 base32 characters; the secret key is 40 base64 characters.
      return {
        data: {
          access_key_id: `AKIA${randomString(UPPER_BASE32, 16)}`,
          secret_access_key: randomString(BASE64, 40),
        },
        secretFields: ['access_key_id', 'secret_access_key'],
      };
    case 'openai':
      // A project key: sk-proj-, then base64url text carrying the T3BlbkFJ marker ("OpenAI") mid-way.
      return {
        data: { api_key: `sk-proj-${randomString(BASE64URL, 74)}T3BlbkFJ${randomString(BASE64URL, 74)}` },
        secretFields: ['api_key'],
      };
    case 'generic':
      // Shaped as a custos operator token (cus_ + 43 base64url): found and tried against custos, it is a login attempt.
      return { data: { token: `cus_${randomString(BASE64URL, 43)}` }, secretFields: ['token'] };
    case 'db-url': {
      if (!database) throw new ValidationError('A db-url honeytoken needs a host or an engine to point at.');
      const segments = path.split('/');
      const username = identifier(segments[segments.length - 1] ?? 'app');
      const dbName = identifier(segments.length > 2 ? (segments[1] as string) : 'app');
      const password = randomString(BASE62, 24);
      const host = database.host.includes(':') ? `[${database.host}]` : database.host;
      return {
        data: {
          url: `${database.scheme}://${username}:${password}@${host}:${database.port}/${dbName}`,
          username,
          password,
        },
        secretFields: ['url', 'password'],
      };
    }
  }
}

/** A database identifier from a path segment: `legacy-admin` → `legacy_admin`. */
function identifier(segment: string): string {
  const name = segment
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 32);
  return /^[a-z]/.test(name) ? name : `u_${name || 'app'}`;
}
