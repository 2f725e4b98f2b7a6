import { createHash, randomBytes } from 'node:crypto';
import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { CustosError } from '../errors/index.js';
import type { Storage } from '../ports/storage.js';
import type { Role } from './role-types.js';
import { operatorLabels } from './task-labels.js';

const BOOTSTRAP = 'bootstrap';
const USED = 'bootstrap.used';
const TOKEN_SHAPE = /^cbt_[A-Za-z0-9_-]{43}$/;
/** A bootstrap token is a hand-off, not a credential: minutes at most. */
export const MAX_BOOTSTRAP_TTL_MS = 60 * 60_000;
/** How long a used token is remembered, to tell a replay from garbage. */
const TOMBSTONE_MS = 7 * 86_400_000;

interface BootstrapEntry {
  role: string;
  /** The role's incarnation when the token was made (absent for roles of earlier builds). */
  role_id?: string;
  /** Operator labels the token grants the task it starts. */
  labels?: Record<string, string>;
  accessor: string;
  created_by: string;
  expires_at: number;
}

export type BootstrapOutcome =
  | {
      kind: 'ok';
      role: string;
      /** The role incarnation the token was made for: a namesake role created since is not it. */
      roleId: string | undefined;
      labels: Record<string, string>;
      accessor: string;
    }
  /** Someone used this token before: a replay, or the intended agent lost a race to an intruder. */
  | { kind: 'reused'; accessor: string }
  | { kind: 'invalid' };

/**
 * Single-use, short-lived bootstrap tokens: the secure-introduction hand-off
 * from an orchestrator to a freshly spawned agent (as Vault's response-
 * wrapped secret ids). Only a SHA-256 of the token is stored (256 random
 * bits: nothing to brute-force).
 */
export class BootstrapService {
  readonly #storage: Pick<Storage, 'entries' | 'transaction'>;
  readonly #cipher: Cipher;
  readonly #now: () => number;

  constructor(deps: { storage: Pick<Storage, 'entries' | 'transaction'>; cipher: Cipher; now?: () => number }) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * Makes a token for one role incarnation. `labels` are operator labels the
   * task it starts will carry (the caller checks them against the role's).
   */
  async create(
    role: Pick<Role, 'name' | 'id'>,
    ttlMs: number,
    createdBy: string,
    labels: Record<string, string> = {},
  ): Promise<{ token: string; accessor: string; expire_time: string }> {
    if (!Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_BOOTSTRAP_TTL_MS) {
      throw new CustosError('CUSTOS_ERR_INVALID_TTL', 'Bootstrap tokens live at most 1h.');
    }
    const token = `cbt_${randomBytes(32).toString('base64url')}`;
    const id = hashToken(token);
    const entry: BootstrapEntry = {
      role: role.name,
      ...(role.id ? { role_id: role.id } : {}),
      labels: operatorLabels(labels),
      accessor: `bac_${randomBytes(16).toString('base64url')}`,
      created_by: createdBy,
      expires_at: this.#now() + ttlMs,
    };
    await this.#storage.entries.put(BOOTSTRAP, id, sealJson(this.#cipher, BOOTSTRAP, id, entry), {
      expiresAt: entry.expires_at,
    });
    return { token, accessor: entry.accessor, expire_time: new Date(entry.expires_at).toISOString() };
  }

  /**
   * Consumes a token exactly once. The delete is the arbiter: of two
   * concurrent logins with one token (on any nodes), exactly one deletes the
   * row; the other finds the tombstone and is reported as a reuse.
   */
  async consume(token: string): Promise<BootstrapOutcome> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return { kind: 'invalid' };
    const id = hashToken(token);
    return this.#storage.transaction(async ({ entries }): Promise<BootstrapOutcome> => {
      const stored = await entries.get(BOOTSTRAP, id);
      if (stored && (await entries.delete(BOOTSTRAP, id))) {
        const entry = await openJson<BootstrapEntry>(this.#cipher, BOOTSTRAP, id, stored.value);
        await entries.put(USED, id, sealJson(this.#cipher, USED, id, { accessor: entry.accessor }), {
          expiresAt: this.#now() + TOMBSTONE_MS,
        });
        if (entry.expires_at <= this.#now()) return { kind: 'invalid' };
        return {
          kind: 'ok',
          role: entry.role,
          roleId: entry.role_id,
          labels: entry.labels ?? {},
          accessor: entry.accessor,
        };
      }
      const used = await entries.get(USED, id);
      if (used) {
        const { accessor } = await openJson<{ accessor: string }>(this.#cipher, USED, id, used.value);
        return { kind: 'reused', accessor };
      }
      return { kind: 'invalid' };
    });
  }

  /** Deletes expired tokens and tombstones. */
  async reapExpired(limit = 1_000): Promise<number> {
    let n = 0;
    for (const ns of [BOOTSTRAP, USED]) {
      for (const key of await this.#storage.entries.listExpired(ns, this.#now(), limit)) {
        if (await this.#storage.entries.delete(ns, key)) n++;
      }
    }
    return n;
  }
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
