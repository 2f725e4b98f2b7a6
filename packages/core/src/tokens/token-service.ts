import { createHash, randomBytes } from 'node:crypto';
import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { OpenedEntryMemo } from '../common/opened-entry-memo.js';
import {
  CustosError,
  NotFoundError,
  PermissionDeniedError,
  UnauthenticatedError,
  ValidationError,
} from '../errors/index.js';
import type { Storage } from '../ports/storage.js';
import type { CreateTokenOptions, IssuedToken, TokenEntry } from './token-types.js';

const TOKENS = 'token';
const ACCESSORS = 'token.accessor';
/** `<creator accessor>/<child accessor>`: revoking a token revokes the tokens it created. */
const CHILDREN = 'token.child';
/** Recognisable prefix: redaction and scanners can find leaked custos tokens. */
export const TOKEN_PREFIX = 'cus_';
const TOKEN_SHAPE = /^cus_[A-Za-z0-9_-]{43}$/;
const ACCESSOR_SHAPE = /^acc_[A-Za-z0-9_-]{22}$/;
const POLICY_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
/** Upper bound for an operator token's lifetime. */
export const MAX_TOKEN_TTL_MS = 32 * 86_400_000;

export interface TokenServiceDeps {
  storage: Pick<Storage, 'entries' | 'transaction'>;
  cipher: Cipher;
  now?: () => number;
}

/**
 * Operator tokens: bearer secrets for humans and services.
 *
 * Storage keys are SHA-256 digests of the token. A plain (unkeyed) hash is
 * enough here because tokens carry 256 random bits: there is nothing to brute
 * force, and a leaked database does not yield a usable token. The entry itself
 * goes through the barrier, so editing a row (say, adding a policy) fails its
 * integrity check instead of granting anything.
 */
export class TokenService {
  readonly #storage: TokenServiceDeps['storage'];
  readonly #cipher: Cipher;
  /** Token entries are read on every request made with a token: opened once per stored version, not decrypted every time. */
  readonly #opened = new OpenedEntryMemo();
  readonly #now: () => number;

  constructor(deps: TokenServiceDeps) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * Issues a token. With a `creator`, the new token may hold only policies the
   * creator holds and may not outlive it (a token cannot mint a more powerful
   * one); the root token may create anything.
   */
  async create(options: CreateTokenOptions, creator?: TokenEntry): Promise<IssuedToken> {
    const policies = [...new Set(options.policies)].sort();
    for (const name of policies) {
      if (!POLICY_NAME.test(name)) throw new ValidationError('Policy names use a-z, 0-9, "_", "." and "-".');
    }
    const root = options.root === true;
    if (!root && options.ttlMs === undefined) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    if (options.ttlMs !== undefined && (options.ttlMs <= 0 || options.ttlMs > MAX_TOKEN_TTL_MS)) {
      throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    }
    const now = this.#now();
    let expiresAt = options.ttlMs === undefined ? null : now + options.ttlMs;
    if (creator && !creator.root) {
      if (root || policies.some((p) => !creator.policies.includes(p))) throw new PermissionDeniedError();
      // Never outlive the creator: clamp rather than refuse, as Vault does for child tokens.
      if (creator.expires_at !== null && (expiresAt === null || expiresAt > creator.expires_at)) {
        expiresAt = creator.expires_at;
      }
    }
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const entry: TokenEntry = {
      accessor: `acc_${randomBytes(16).toString('base64url')}`,
      policies: root ? ['root'] : policies,
      root,
      display_name: root ? 'root' : displayName(options.displayName),
      created_time: new Date(now).toISOString(),
      expires_at: expiresAt,
      creator: creator?.accessor ?? null,
    };
    const id = tokenId(token);
    await this.#storage.transaction(async ({ entries }) => {
      await entries.put(TOKENS, id, sealJson(this.#cipher, TOKENS, id, entry), { expiresAt });
      await entries.put(ACCESSORS, entry.accessor, sealJson(this.#cipher, ACCESSORS, entry.accessor, { id }), {
        expiresAt,
      });
      if (creator) {
        await entries.put(CHILDREN, `${creator.accessor}/${entry.accessor}`, new Uint8Array(0), { expiresAt });
      }
    });
    return { token, entry };
  }

  /**
   * Resolves a bearer token to its entry. Every failure (malformed, unknown,
   * expired, revoked, tampered) is the same UnauthenticatedError, so a caller
   * cannot tell which check failed.
   */
  async authenticate(token: string): Promise<TokenEntry> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) throw new UnauthenticatedError();
    const id = tokenId(token);
    const stored = await this.#storage.entries.get(TOKENS, id);
    if (!stored) throw new UnauthenticatedError();
    let entry: TokenEntry;
    try {
      entry = await this.#opened.openJson<TokenEntry>(this.#cipher, TOKENS, id, stored.value);
    } catch {
      throw new UnauthenticatedError();
    }
    if (entry.expires_at !== null && entry.expires_at <= this.#now()) throw new UnauthenticatedError();
    return entry;
  }

  /** Looks a token up by its accessor (without the token). */
  async lookupAccessor(accessor: string): Promise<TokenEntry> {
    const id = await this.#idForAccessor(accessor);
    const stored = await this.#storage.entries.get(TOKENS, id);
    if (!stored) throw new NotFoundError();
    const entry = await openJson<TokenEntry>(this.#cipher, TOKENS, id, stored.value);
    if (entry.expires_at !== null && entry.expires_at <= this.#now()) throw new NotFoundError();
    return entry;
  }

  /**
   * The accessors from `accessor` up its creator chain to the highest
   * creator that is not the root token, self first. Who mints a token can
   * act through it, so for counting *people* (e.g. approvers of an access
   * request, docs/jit.md) the last one stands for the whole chain. A token
   * the root token minted is its own person: root is how an administrator
   * hands out tokens to different people. Stops at a creator that is gone
   * (a child never outlives its creator, so only a revoked tree ends early).
   */
  async lineage(accessor: string): Promise<string[]> {
    const out = [accessor];
    let entry: TokenEntry;
    try {
      entry = await this.lookupAccessor(accessor);
    } catch (e) {
      if (e instanceof NotFoundError) return out;
      throw e;
    }
    // Bounded: a creator chain cannot loop (a creator exists before its child), the bound is only belt and braces.
    while (entry.creator !== null && out.length < 64) {
      let creator: TokenEntry;
      try {
        creator = await this.lookupAccessor(entry.creator);
      } catch (e) {
        if (e instanceof NotFoundError) break;
        throw e;
      }
      if (creator.root) break;
      out.push(creator.accessor);
      entry = creator;
    }
    return out;
  }

  /**
   * Revokes by accessor; the token stops working at once on this store, and
   * so does every token it created (and theirs): a compromised token cannot
   * leave working tokens behind.
   */
  async revokeAccessor(accessor: string): Promise<void> {
    const id = await this.#idForAccessor(accessor);
    await this.#storage.transaction(async ({ entries }) => {
      await entries.delete(TOKENS, id);
      await entries.delete(ACCESSORS, accessor);
    });
    for (const key of await this.#storage.entries.list(CHILDREN, `${accessor}/`, { limit: 10_000 })) {
      await this.revokeAccessor(key.slice(accessor.length + 1)).catch((e: unknown) => {
        if (!(e instanceof NotFoundError)) throw e; // already gone or expired
      });
      await this.#storage.entries.delete(CHILDREN, key);
    }
  }

  /** Deletes expired tokens; returns how many. Safe to run on several nodes. */
  async reapExpired(limit = 1_000): Promise<number> {
    const now = this.#now();
    let reaped = 0;
    for (const accessor of await this.#storage.entries.listExpired(ACCESSORS, now, limit)) {
      try {
        await this.revokeAccessor(accessor);
        reaped++;
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e; // another node got there first
      }
    }
    for (const id of await this.#storage.entries.listExpired(TOKENS, now, limit)) {
      if (await this.#storage.entries.delete(TOKENS, id)) reaped++;
    }
    for (const key of await this.#storage.entries.listExpired(CHILDREN, now, limit)) {
      await this.#storage.entries.delete(CHILDREN, key);
    }
    return reaped;
  }

  async #idForAccessor(accessor: string): Promise<string> {
    if (typeof accessor !== 'string' || !ACCESSOR_SHAPE.test(accessor)) throw new NotFoundError();
    const stored = await this.#storage.entries.get(ACCESSORS, accessor);
    if (!stored) throw new NotFoundError();
    return (await openJson<{ id: string }>(this.#cipher, ACCESSORS, accessor, stored.value)).id;
  }
}

/**
 * A token's display name: cosmetic, chosen by its creator, so never read by
 * a policy and never what the audit trail identifies a caller by (that is
 * the accessor). Still, a name that passes for the root token's in a
 * listing or an audit event is refused, in any case or spacing.
 */
function displayName(requested: string | undefined): string {
  if (requested === undefined) return 'token';
  const name = requested.trim();
  if (!name || name.length > 128) throw new ValidationError('A display name is 1 to 128 characters.');
  if (RESERVED_DISPLAY_NAMES.has(name.toLowerCase().replace(/\s+/g, ''))) {
    throw new ValidationError('This display name is reserved.');
  }
  return name;
}

/** Names only custos gives: the root token's. */
const RESERVED_DISPLAY_NAMES = new Set(['root']);

/** The storage key of a token: hex SHA-256 of the bearer string. */
export function tokenId(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
