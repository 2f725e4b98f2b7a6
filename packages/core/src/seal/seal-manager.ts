import { randomBytes } from 'node:crypto';
import { Barrier } from '../barrier/barrier.js';
import { KEY_BYTES } from '../barrier/barrier-blob.js';
import { deleteStaleKeyrings } from '../barrier/keyring-store.js';
import { CustosError, IntegrityError, ValidationError } from '../errors/index.js';
import type { EntryStore } from '../ports/index.js';
import { createOrReadDevKeyFile, readDevKeyFile } from './dev-key-file.js';
import {
  keyringBinding,
  newSealConfig,
  parseSealConfig,
  SEAL_CONFIG_KEY,
  SEAL_CONFIG_NAMESPACE,
  type SealConfig,
  type SealType,
  serializeSealConfig,
  validShamir,
} from './seal-config.js';
import { combineShares, decodeShare, splitRootKey } from './shamir-shares.js';
import { UnsealProgress } from './unseal-progress.js';

/** What `custos operator status` shows. Never contains key material. */
export interface SealStatus {
  readonly initialized: boolean;
  readonly sealed: boolean;
  /** null until initialised. */
  readonly type: SealType | null;
  /** Shamir: shares needed to unseal. */
  readonly threshold?: number;
  /** Shamir: shares issued at initialisation. */
  readonly shares?: number;
  /** Shamir, while sealed: distinct shares submitted so far. */
  readonly progress?: number;
  /** While unsealed: the key term new writes use. */
  readonly term?: number;
}

/** How to initialise: the dev seal's key file, or a Shamir split of the root key. */
export type InitConfig =
  | { readonly type: 'dev'; readonly keyFile: string }
  | { readonly type: 'shamir'; readonly shares: number; readonly threshold: number };

/** The result of {@link SealManager.initialize}: Shamir shares, returned once and never stored. */
export interface InitResult {
  readonly shares?: string[];
}

/** Called after unsealing (load state) or after sealing (zero state). */
export type SealHook = () => void | Promise<void>;

/**
 * The seal lifecycle: initialise once, unseal (dev key file or Shamir shares),
 * seal, rotate the keyring. Owns the {@link Barrier} that domain services use.
 * Lifecycle operations run one at a time.
 *
 * @example
 * ```ts
 * const seals = new SealManager(storage.entries);
 * const { shares } = await seals.initialize({ type: 'shamir', shares: 5, threshold: 3 });
 * // … create the root token while unsealed, hand out the shares, then:
 * await seals.seal();
 * for (const share of someThreeShares) await seals.submitUnsealShare(share);
 * ```
 */
export class SealManager {
  /** The barrier this manager unseals; pass it (as a `Cipher`) to domain services. */
  readonly barrier: Barrier;
  readonly #store: EntryStore;
  readonly #progress = new UnsealProgress();
  readonly #onUnseal = new Set<SealHook>();
  readonly #onSeal = new Set<SealHook>();
  /** Once seen, the configuration never changes: initialisation is one-way. */
  #config: SealConfig | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(store: EntryStore, barrier: Barrier = new Barrier(store)) {
    this.#store = store;
    this.barrier = barrier;
  }

  /** Initialised? Sealed? Which seal, and how far an unseal has got. */
  async status(): Promise<SealStatus> {
    const config = await this.#loadConfig();
    if (config === undefined) return { initialized: false, sealed: true, type: null };
    const sealed = this.barrier.sealed;
    return {
      initialized: true,
      sealed,
      type: config.type,
      ...(config.type === 'shamir' ? { threshold: config.threshold, shares: config.shares } : {}),
      ...(config.type === 'shamir' && sealed ? { progress: this.#progress.count } : {}),
      ...(sealed ? {} : { term: this.barrier.term }),
    };
  }

  /**
   * Initialises custos: creates the root key and keyring term 1 and leaves
   * the barrier unsealed, so the caller can create the root token (then, for
   * Shamir, call {@link seal}). Throws `CUSTOS_ERR_ALREADY_INITIALIZED` when
   * already done, here or by another node.
   *
   * Crash-safe by ordering: (1) the dev key file, (2) the encrypted keyring
   * under a fresh random keyring id, (3) last, the seal configuration with
   * putIfAbsent, which is the "initialised" marker and names the keyring id.
   * A crash before (3) leaves only unreferenced rows, so a restart simply
   * initialises again (and deletes them); two nodes racing both write their
   * own keyring, and the one whose marker lands wins.
   *
   * For Shamir the shares exist only in the returned value: a crash after (3)
   * but before the caller has them leaves a store nobody can unseal, holding
   * nothing yet; it has to be wiped and initialised again.
   */
  initialize(init: InitConfig): Promise<InitResult> {
    return this.#exclusive(async () => {
      if ((await this.#loadConfig()) !== undefined) throw new CustosError('CUSTOS_ERR_ALREADY_INITIALIZED');
      if (init.type === 'shamir' && !validShamir(init.shares, init.threshold)) {
        throw new ValidationError('Shamir needs 2 <= threshold <= shares <= 255.');
      }
      const config =
        init.type === 'shamir'
          ? newSealConfig('shamir', { shares: init.shares, threshold: init.threshold })
          : newSealConfig('dev');
      const binding = keyringBinding(config);
      // The dev seal's key comes from its file (created now, or left by a
      // crashed earlier attempt, which is fine: nothing references it yet).
      const rootKey = init.type === 'dev' ? await createOrReadDevKeyFile(init.keyFile) : randomBytes(KEY_BYTES);
      let shares: string[] | undefined;
      try {
        // Split before writing anything, so a failure here leaves no trace.
        if (init.type === 'shamir') shares = await splitRootKey(rootKey, init.shares, init.threshold);
        await this.barrier.createKeyring(rootKey, binding);
        const bytes = Buffer.from(serializeSealConfig(config), 'utf8');
        if (!(await this.#store.putIfAbsent(SEAL_CONFIG_NAMESPACE, SEAL_CONFIG_KEY, bytes))) {
          // Another node initialised first. Our keyring row is unreferenced
          // and its root key is about to be zeroed; the winner's clean-up
          // (below, on its side) or the next initialisation removes it.
          throw new CustosError('CUSTOS_ERR_ALREADY_INITIALIZED');
        }
        this.#config = config;
        try {
          await deleteStaleKeyrings(this.#store, binding);
        } catch {
          // Only tidiness: stale rows are unreadable without their lost root keys.
        }
        // The barrier takes ownership of its own copy; ours is zeroed below.
        await this.barrier.unseal(Buffer.from(rootKey), binding);
      } finally {
        rootKey.fill(0);
      }
      await this.#afterUnseal();
      return shares === undefined ? {} : { shares };
    });
  }

  /**
   * The embedded default: initialises with the dev seal on first start, else
   * unseals with the key file. `initialized` is true when this call did the
   * initialisation (so the caller creates the root token).
   */
  startDev(keyFile: string): Promise<{ initialized: boolean }> {
    return this.#loadConfig().then(async (config) => {
      if (config === undefined) {
        try {
          await this.initialize({ type: 'dev', keyFile });
          return { initialized: true };
        } catch (e) {
          // Lost a race with another process initialising the same store.
          if (!(e instanceof CustosError && e.code === 'CUSTOS_ERR_ALREADY_INITIALIZED')) throw e;
        }
      }
      await this.unsealWithDevKey(keyFile);
      return { initialized: false };
    });
  }

  /**
   * Unseals a dev-seal store with its key file (refused if the file is
   * accessible to group or others). A key that does not open the keyring
   * throws `CUSTOS_ERR_UNSEAL_FAILED`.
   */
  unsealWithDevKey(keyFile: string): Promise<SealStatus> {
    return this.#exclusive(async () => {
      const config = await this.#requireConfig('dev');
      if (this.barrier.sealed) {
        await this.#unsealWith(await readDevKeyFile(keyFile), config);
      }
      return this.status();
    });
  }

  /**
   * Submits one Shamir share (base64). Progress is kept in memory until the
   * threshold is reached; then the root key is rebuilt and verified by
   * decrypting the keyring.
   *
   * - malformed share: `CUSTOS_ERR_INVALID_SHARE`, progress kept;
   * - the same share twice: not counted again;
   * - shares that do not rebuild the root key (or two different shares with
   *   the same index): `CUSTOS_ERR_UNSEAL_FAILED`, progress reset, because
   *   which share was wrong cannot be known.
   */
  submitUnsealShare(share: string): Promise<SealStatus> {
    return this.#exclusive(async () => {
      const config = await this.#requireConfig('shamir');
      if (!this.barrier.sealed) return this.status();
      const outcome = this.#progress.add(decodeShare(share));
      if (outcome === 'conflict') {
        this.#progress.reset();
        throw new CustosError('CUSTOS_ERR_UNSEAL_FAILED');
      }
      if (this.#progress.count < config.threshold!) return this.status();
      let rootKey: Buffer;
      try {
        rootKey = await combineShares(this.#progress.shares());
      } catch {
        throw new CustosError('CUSTOS_ERR_UNSEAL_FAILED');
      } finally {
        // Whatever happens next, these shares have been used: start over.
        this.#progress.reset();
      }
      await this.#unsealWith(rootKey, config);
      return this.status();
    });
  }

  /**
   * Seals: zeroes the root key, every data key and any collected shares, then
   * runs the onSeal hooks. Sealing a sealed node does nothing more. Always
   * ends sealed; a hook's error is rethrown after every hook ran.
   *
   * This is the privileged operation (an operator's `sys/seal`); it is never
   * what {@link resetUnseal} does.
   */
  seal(): Promise<void> {
    return this.#exclusive(() => this.#sealNow());
  }

  /**
   * Discards the Shamir shares submitted so far, and nothing else. Anyone
   * may ask for it (`sys/unseal` is public, as in Vault, so that operators
   * can start over after a wrong share), which is exactly why it must never
   * reach {@link seal}: on an unsealed node there is no progress to discard,
   * and the request is refused with `CUSTOS_ERR_NOT_SEALED` rather than
   * taken as a reason to drop the keys.
   */
  resetUnseal(): Promise<SealStatus> {
    return this.#exclusive(async () => {
      if (!this.barrier.sealed) throw new CustosError('CUSTOS_ERR_NOT_SEALED');
      this.#progress.reset();
      return this.status();
    });
  }

  /** Adds a keyring term online; new writes use it, older data stays readable. */
  rotateKeyring(): Promise<{ term: number }> {
    return this.#exclusive(async () => ({ term: await this.barrier.rotate() }));
  }

  /**
   * Runs `hook` after every unseal (including the one at initialisation).
   * Hooks run inside the lifecycle lock: they must not call lifecycle methods
   * of this manager. A hook that throws seals the node again. Returns an
   * unsubscribe.
   */
  onUnseal(hook: SealHook): () => void {
    this.#onUnseal.add(hook);
    return () => this.#onUnseal.delete(hook);
  }

  /** Runs `hook` after every seal, once the barrier holds no key. Returns an unsubscribe. */
  onSeal(hook: SealHook): () => void {
    this.#onSeal.add(hook);
    return () => this.#onSeal.delete(hook);
  }

  async #unsealWith(rootKey: Buffer, config: SealConfig): Promise<void> {
    try {
      // The barrier owns rootKey from here and zeroes it if unsealing fails.
      await this.barrier.unseal(rootKey, keyringBinding(config));
    } catch (e) {
      // The key does not open the keyring: wrong key or shares (or an edited
      // configuration, bound into the keyring's AAD). Nothing more is said.
      if (e instanceof IntegrityError) throw new CustosError('CUSTOS_ERR_UNSEAL_FAILED');
      throw e;
    }
    await this.#afterUnseal();
  }

  async #afterUnseal(): Promise<void> {
    try {
      for (const hook of this.#onUnseal) await hook();
    } catch (e) {
      // Fail closed: an unsealed barrier with services that did not load
      // their state is worse than a sealed one.
      await this.#sealNow().catch(() => {});
      throw e;
    }
  }

  async #sealNow(): Promise<void> {
    this.#progress.reset();
    if (this.barrier.sealed) return;
    this.barrier.seal();
    let failure: { error: unknown } | undefined;
    for (const hook of this.#onSeal) {
      try {
        await hook();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }

  async #requireConfig<T extends SealType>(type: T): Promise<SealConfig & { type: T }> {
    const config = await this.#loadConfig();
    if (config === undefined) throw new CustosError('CUSTOS_ERR_NOT_INITIALIZED');
    if (config.type !== type) throw new CustosError('CUSTOS_ERR_SEAL_UNSUPPORTED');
    return config as SealConfig & { type: T };
  }

  async #loadConfig(): Promise<SealConfig | undefined> {
    if (this.#config !== undefined) return this.#config;
    const entry = await this.#store.get(SEAL_CONFIG_NAMESPACE, SEAL_CONFIG_KEY);
    if (entry === undefined) return undefined;
    this.#config = parseSealConfig(entry.value);
    return this.#config;
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }
}
