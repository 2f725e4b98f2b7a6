import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { EngineRole } from '../database-engine.js';

/** A role with the engine's built-in statements. */
export const defaultRole = (overrides: Partial<EngineRole> = {}): EngineRole => ({
  name: 'readonly',
  creationStatements: [],
  revocationStatements: [],
  defaultTtlMs: 60_000,
  maxTtlMs: 3_600_000,
  ...overrides,
});

/** A unique lowercase suffix for test objects. */
export const unique = (): string => randomBytes(5).toString('hex');

/** Anything shaped like a custos-generated password (43 base64url characters). */
export const PASSWORD_SHAPE = /[A-Za-z0-9_-]{43}/;

/** `url` with another user and password. */
export function withUser(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
}

/**
 * True when a PostgreSQL SCRAM-SHA-256 verifier (`pg_authid.rolpassword`) was
 * made from `password` (RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key"))).
 * Lets a test check a password on a server that trusts loopback logins.
 */
export function scramVerifierMatches(verifier: string, password: string): boolean {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (!m) return false;
  const [, iterations, salt, storedKey] = m as unknown as [string, string, string, string];
  const salted = pbkdf2Sync(password, Buffer.from(salt, 'base64'), Number(iterations), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return createHash('sha256').update(clientKey).digest('base64') === storedKey;
}
