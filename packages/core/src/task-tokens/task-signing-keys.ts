import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  webcrypto,
} from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { type Cipher, entryAad } from '../common/cipher.js';
import { CustosError, IntegrityError, SealedError } from '../errors/index.js';
import type { EntryStore } from '../ports/storage.js';
import { decodeSigningKeyRecord, encodeSigningKeyRecord } from './task-signing-key-record.js';
import { encodeTaskTokenHeader } from './task-token-jws.js';

const NS = 'sys';
const PREFIX = 'task-signing-key/';
const STORAGE_KEY = /^task-signing-key\/(\d{10})$/;

/** How old a node's view of the key set may get before signing re-reads it. */
export const DEFAULT_KEY_REFRESH_INTERVAL_MS = 30_000;
/** At most one reload per this interval is caused by tokens naming an unknown `kid`. */
export const DEFAULT_MIN_KEY_RELOAD_INTERVAL_MS = 1_000;

/** One public key of the JWKS (RFC 7517, RFC 8037). */
export interface TaskJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly kid: string;
  readonly alg: 'EdDSA';
  readonly use: 'sig';
}

/** What `/.well-known/jwks.json` serves. */
export interface TaskJwks {
  readonly keys: TaskJwk[];
}

/** A loaded signing key. `privateKey` never leaves the process. */
export interface TaskSigningKey {
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key. */
  readonly kid: string;
  readonly generation: number;
  /** Epoch ms from which nodes sign with it. */
  readonly activateAt: number;
  /** Epoch ms from which it is no longer published nor accepted; null while no successor is active. */
  readonly retireAt: number | null;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /**
   * The public key as a WebCrypto key: verification goes through
   * `crypto.subtle`, which runs on libuv's thread pool and so keeps Ed25519
   * verification (about three times the cost of signing) off the event loop.
   */
  readonly verifyKey: webcrypto.CryptoKey;
  /** The base64url JWS header of every token it signs. */
  readonly encodedHeader: string;
  readonly jwk: TaskJwk;
}

interface LoadedKey extends TaskSigningKey {
  readonly predecessorRetireAfterMs: number | null;
}

interface KeySet {
  /** Ascending by generation. */
  readonly keys: readonly LoadedKey[];
  readonly byHeader: ReadonlyMap<string, LoadedKey>;
  readonly byKid: ReadonlyMap<string, LoadedKey>;
  /** Clock time of the read this set came from. */
  readonly loadedAt: number;
}

export interface TaskSigningKeysOptions {
  /** Epoch-milliseconds clock (tests pass a fake one). */
  readonly now?: () => number;
  /** See {@link DEFAULT_KEY_REFRESH_INTERVAL_MS}. */
  readonly refreshIntervalMs?: number;
  /** See {@link DEFAULT_MIN_KEY_RELOAD_INTERVAL_MS}. */
  readonly minReloadIntervalMs?: number;
}

export interface RotateTaskSigningKeyOptions {
  /**
   * How long the key being replaced stays verifiable and in the JWKS after
   * the new one activates: at least the longest TTL a task token can have
   * (the largest role max TTL) plus the refresh interval, since another node
   * may sign with the old key until it next re-reads the key set.
   */
  readonly retireAfterMs: number;
  /**
   * Publish the new key in the JWKS this long before nodes sign with it, so
   * downstream services that cache the JWKS already hold it. Default 0.
   */
  readonly activateAfterMs?: number;
}

/**
 * The Ed25519 keys that sign task tokens. Private keys live behind the
 * barrier in `sys/task-signing-key/<generation>` (one immutable record per
 * generation, claimed with putIfAbsent, so nodes rotating at once agree on
 * one new key); they are read at unseal and kept in memory as KeyObjects.
 *
 * Signing uses the newest active generation. A replaced key stays
 * verifiable and published until `retireAt` (its successor's activation plus
 * the `retireAfterMs` given at rotation), then {@link prune} deletes it.
 *
 * Multi-node: a node re-reads the set when its view is older than
 * `refreshIntervalMs` before signing, and when a token names a `kid` it does
 * not know (rate-limited, so junk kids cannot turn into a storage scan per
 * request). Drop the instance (or call {@link forget}) when the barrier seals.
 *
 * @example
 * ```ts
 * const keys = await TaskSigningKeys.load(storage.entries, barrier);
 * await keys.rotate({ retireAfterMs: roleMaxTtlMs + DEFAULT_KEY_REFRESH_INTERVAL_MS });
 * reply.send(keys.jwks());
 * ```
 */
export class TaskSigningKeys {
  readonly #entries: EntryStore;
  readonly #cipher: Cipher;
  readonly #now: () => number;
  readonly #refreshIntervalMs: number;
  readonly #minReloadIntervalMs: number;
  #set: KeySet | undefined;
  #forgotten = false;
  #reloading: Promise<void> | undefined;
  #reloadSoon: Promise<void> | undefined;
  /** performance.now() of the last reload started (monotonic: rate limiting must not follow a fake clock). */
  #lastReloadStarted = Number.NEGATIVE_INFINITY;

  private constructor(entries: EntryStore, cipher: Cipher, options: TaskSigningKeysOptions) {
    this.#entries = entries;
    this.#cipher = cipher;
    this.#now = options.now ?? Date.now;
    this.#refreshIntervalMs = options.refreshIntervalMs ?? DEFAULT_KEY_REFRESH_INTERVAL_MS;
    this.#minReloadIntervalMs = options.minReloadIntervalMs ?? DEFAULT_MIN_KEY_RELOAD_INTERVAL_MS;
  }

  /**
   * Reads the signing keys (at unseal), creating the first one when none
   * exists. Two nodes starting together create one key between them.
   */
  static async load(
    entries: EntryStore,
    cipher: Cipher,
    options: TaskSigningKeysOptions = {},
  ): Promise<TaskSigningKeys> {
    const keys = new TaskSigningKeys(entries, cipher, options);
    await keys.#read();
    if (keys.#keySet().keys.length === 0) {
      await keys.#create(1, 0, null);
      await keys.#read();
      // putIfAbsent lost or won, generation 1 must be there now.
      if (keys.#keySet().keys.length === 0) throw new IntegrityError();
    }
    return keys;
  }

  /** The kid new tokens are signed with. */
  get activeKid(): string {
    return this.#active(this.#now()).kid;
  }

  /**
   * The key to sign with now; re-reads the key set first when this node's
   * view is older than the refresh interval (so a rotation on another node
   * is followed within that interval).
   */
  async signingKey(): Promise<TaskSigningKey> {
    if (this.#now() - this.#keySet().loadedAt >= this.#refreshIntervalMs) await this.reload();
    return this.#active(this.#now());
  }

  /**
   * The key whose tokens carry exactly this encoded header, if it is known
   * and not retired at `now`. Exact header bytes: a token whose header has
   * any other spelling, order or parameter was not made by custos.
   */
  keyForHeader(encodedHeader: string, now: number = this.#now()): TaskSigningKey | undefined {
    const key = this.#keySet().byHeader.get(encodedHeader);
    return key === undefined || isRetired(key, now) ? undefined : key;
  }

  /** True when `kid` names a key that is known and not retired at `now`. */
  hasKid(kid: string, now: number = this.#now()): boolean {
    const key = this.#keySet().byKid.get(kid);
    return key !== undefined && !isRetired(key, now);
  }

  /** The public keys to publish at `/.well-known/jwks.json`, newest first; retired keys are left out. */
  jwks(): TaskJwks {
    const now = this.#now();
    const keys = this.#keySet()
      .keys.filter((k) => !isRetired(k, now))
      .reverse()
      .map((k) => ({ ...k.jwk }));
    return { keys };
  }

  /**
   * Creates the next generation and makes it the signing key (after
   * `activateAfterMs`). The key it replaces stays verifiable for
   * `retireAfterMs` after that. If another node rotated to the same
   * generation at the same moment, its key is adopted instead: concurrent
   * rotations make one. Also prunes retired keys.
   *
   * @returns the kid of the new key.
   */
  async rotate(options: RotateTaskSigningKeyOptions): Promise<string> {
    const { retireAfterMs, activateAfterMs = 0 } = options;
    if (!Number.isSafeInteger(retireAfterMs) || retireAfterMs <= 0) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    if (!Number.isSafeInteger(activateAfterMs) || activateAfterMs < 0) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    await this.#freshRead();
    const keys = this.#keySet().keys;
    const generation = (keys[keys.length - 1]?.generation ?? 0) + 1;
    await this.#create(generation, activateAfterMs, retireAfterMs);
    await this.#freshRead();
    const created = this.#keySet().keys.find((k) => k.generation === generation);
    if (created === undefined) throw new IntegrityError();
    await this.prune();
    return created.kid;
  }

  /**
   * Deletes retired keys from storage, oldest first, stopping at the first
   * one still live (so every stored key keeps its successor, which defines
   * its retirement). Safe on several nodes at once.
   *
   * @returns how many keys were deleted.
   */
  async prune(): Promise<number> {
    const now = this.#now();
    let pruned = 0;
    for (const key of this.#keySet().keys) {
      if (!isRetired(key, now)) break;
      await this.#entries.delete(NS, storageKey(key.generation));
      pruned++;
    }
    if (pruned > 0) await this.#freshRead();
    return pruned;
  }

  /** Re-reads the key set from storage. Concurrent calls share one read. */
  reload(): Promise<void> {
    if (this.#reloading === undefined) {
      this.#lastReloadStarted = performance.now();
      this.#reloading = this.#read().finally(() => {
        this.#reloading = undefined;
      });
    }
    return this.#reloading;
  }

  /**
   * A reload on behalf of a token naming an unknown kid. All such callers
   * share one reload, and reloads start at most once per
   * `minReloadIntervalMs`: a flood of forged kids costs one storage scan per
   * interval, and a genuine new key is found within it.
   */
  reloadForUnknownKid(): Promise<void> {
    if (this.#reloadSoon === undefined) {
      const wait = this.#lastReloadStarted + this.#minReloadIntervalMs - performance.now();
      this.#reloadSoon = (async () => {
        if (wait > 0) await delay(wait);
        await this.reload();
      })().finally(() => {
        this.#reloadSoon = undefined;
      });
    }
    return this.#reloadSoon;
  }

  /**
   * Drops every key from memory (call when the barrier seals); later calls
   * throw {@link SealedError}. KeyObjects cannot be zeroed, so dropping the
   * references is the best the runtime allows.
   */
  forget(): void {
    this.#forgotten = true;
    this.#set = undefined;
  }

  /** A read that starts after any read in flight, so it sees writes made before this call. */
  async #freshRead(): Promise<void> {
    await this.#reloading?.catch(() => {});
    await this.reload();
  }

  async #read(): Promise<void> {
    if (this.#forgotten) throw new SealedError();
    const previous = this.#set;
    const startedAt = this.#now();
    const stored = await this.#entries.scan(NS, PREFIX);
    const known = new Map(previous?.keys.map((k) => [k.generation, k]));
    const loaded: Omit<LoadedKey, 'retireAt'>[] = [];
    for (const entry of stored) {
      const match = STORAGE_KEY.exec(entry.key);
      if (match === null) throw new IntegrityError();
      const generation = Number(match[1]);
      // Records never change, so a generation already in memory is reused
      // without decrypting it again.
      loaded.push(known.get(generation) ?? (await this.#open(generation, entry.key, entry.value)));
    }
    loaded.sort((a, b) => a.generation - b.generation);
    const keys: LoadedKey[] = loaded.map((k, i) => {
      const successor = loaded[i + 1];
      const retireAt =
        successor === undefined ? null : successor.activateAt + (successor.predecessorRetireAfterMs ?? 0);
      return { ...k, retireAt };
    });
    if (this.#forgotten) return; // forgotten while reading: keep nothing
    this.#set = {
      keys,
      byHeader: new Map(keys.map((k) => [k.encodedHeader, k])),
      byKid: new Map(keys.map((k) => [k.kid, k])),
      loadedAt: startedAt,
    };
  }

  async #open(generation: number, key: string, blob: Uint8Array): Promise<Omit<LoadedKey, 'retireAt'>> {
    const plain = this.#cipher.decrypt(entryAad(NS, key), blob);
    let opened: Omit<LoadedKey, 'retireAt' | 'verifyKey'>;
    try {
      const record = decodeSigningKeyRecord(plain);
      if (record.generation !== generation) throw new IntegrityError();
      // A view, not a copy, so zeroing `plain` below wipes the key bytes.
      const der = Buffer.from(record.pkcs8.buffer, record.pkcs8.byteOffset, record.pkcs8.byteLength);
      const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      if (privateKey.asymmetricKeyType !== 'ed25519') throw new IntegrityError();
      const publicKey = createPublicKey(privateKey);
      const x = publicKey.export({ format: 'jwk' }).x;
      if (typeof x !== 'string') throw new IntegrityError();
      const kid = ed25519Thumbprint(x);
      opened = {
        kid,
        generation,
        activateAt: record.activateAt,
        predecessorRetireAfterMs: record.predecessorRetireAfterMs,
        privateKey,
        publicKey,
        encodedHeader: encodeTaskTokenHeader(kid),
        jwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' },
      };
    } finally {
      plain.fill(0);
    }
    const spki = opened.publicKey.export({ format: 'der', type: 'spki' });
    const verifyKey = await webcrypto.subtle.importKey('spki', spki, { name: 'Ed25519' }, false, ['verify']);
    return { ...opened, verifyKey };
  }

  async #create(
    generation: number,
    activateAfterMs: number,
    predecessorRetireAfterMs: number | null,
  ): Promise<boolean> {
    const pkcs8 = generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' });
    const now = this.#now();
    const plain = encodeSigningKeyRecord({
      generation,
      createdAt: now,
      activateAt: now + activateAfterMs,
      predecessorRetireAfterMs,
      pkcs8,
    });
    const key = storageKey(generation);
    let blob: Uint8Array;
    try {
      blob = this.#cipher.encrypt(entryAad(NS, key), plain);
    } finally {
      plain.fill(0);
      pkcs8.fill(0);
    }
    return this.#entries.putIfAbsent(NS, key, blob);
  }

  #active(now: number): LoadedKey {
    const keys = this.#keySet().keys;
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      if (key.activateAt <= now) return key;
    }
    // Only pre-published keys (clock skew between nodes): the oldest is the
    // one every node already knows.
    const oldest = keys[0];
    if (oldest === undefined) throw new IntegrityError();
    return oldest;
  }

  #keySet(): KeySet {
    if (this.#set === undefined || this.#forgotten) throw new SealedError();
    return this.#set;
  }
}

function isRetired(key: TaskSigningKey, now: number): boolean {
  return key.retireAt !== null && now >= key.retireAt;
}

function storageKey(generation: number): string {
  return `${PREFIX}${String(generation).padStart(10, '0')}`;
}

/** RFC 7638 thumbprint of an Ed25519 public JWK: SHA-256 over its required members in lexical order. */
export function ed25519Thumbprint(x: string): string {
  return createHash('sha256')
    .update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x }))
    .digest('base64url');
}
