import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Barrier } from '../barrier/barrier.js';
import { KEY_BYTES } from '../barrier/barrier-blob.js';
import { claimTerm, deleteStaleKeyrings, readTerms } from '../barrier/keyring-store.js';
import { CustosError, IntegrityError, SealedError, ValidationError } from '../errors/index.js';
import type { EntryStore } from '../ports/index.js';
import { createOrReadDevKeyFile, readDevKeyFile } from './dev-key-file.js';
import { hasHealthCheck, type RootKeyWrapper } from './root-key-wrapper.js';
import {
  keyringBinding,
  newSealConfig,
  newWrappedSealConfig,
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
import {
  deleteOlderWrappings,
  deleteStaleWrappings,
  findWrappingFor,
  readWrappedRootKeys,
  storeWrappedRootKey,
  unwrapRootKey,
} from './wrapped-root-key.js';

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
  /** Wrapped seals: the wrapper type (`pkcs11`, `awskms`, …). */
  readonly wrapper?: string;
  /** Wrapped seals: the non-secret description of the seal key in use (key label, key id). */
  readonly sealKey?: Readonly<Record<string, string>>;
  /** Shamir or dev, while a migration to a wrapped seal waits for the old seal. */
  readonly migrationTo?: string;
}

/** How to initialise: the dev seal's key file, or a Shamir split of the root key. */
export type InitConfig =
  | { readonly type: 'dev'; readonly keyFile: string }
  | { readonly type: 'shamir'; readonly shares: number; readonly threshold: number }
  | { readonly type: 'wrapped'; readonly wrapper: RootKeyWrapper };

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
  /** Once seen, the configuration changes only by a seal migration, made here under the lifecycle lock. */
  #config: SealConfig | undefined;
  /** Wrapped seals: the wrapper that unseals (replaced by rotate-seal). Owned by the caller. */
  #wrapper: RootKeyWrapper | undefined;
  /** A migration to this wrapper runs on the next unseal with the old seal (Shamir shares). */
  #migrationTarget: RootKeyWrapper | undefined;
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
      ...(config.type === 'wrapped' ? { wrapper: config.wrapper } : {}),
      ...(config.type === 'wrapped' && this.#wrapper ? { sealKey: this.#wrapper.describe() } : {}),
      ...(config.type !== 'wrapped' && this.#migrationTarget ? { migrationTo: this.#migrationTarget.type } : {}),
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
          : init.type === 'wrapped'
            ? newWrappedSealConfig(init.wrapper.type)
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
        // Wrapped: the wrapped root key is stored before the marker, so a
        // configuration that names this keyring always has a way to open it.
        if (init.type === 'wrapped') {
          if (!(await storeWrappedRootKey(this.#store, init.wrapper, config, rootKey, 1))) throw new IntegrityError();
          this.#wrapper = init.wrapper;
        }
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
          await deleteStaleWrappings(this.#store, config);
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
   * The auto-unseal start of a `wrapped` seal: initialises on first start
   * (root key wrapped by `wrapper`), else unwraps the stored root key and
   * unseals. `wrapper` stays the caller's (it closes it).
   *
   * A store sealed by `dev` or `shamir` is migrated only when `migrate` is
   * given, and only with the old seal presented once: the dev key file
   * (`migrate.devKeyFile`), or — for Shamir — a threshold of shares
   * submitted afterwards through {@link submitUnsealShare}, which then
   * migrates. Without `migrate`: `CUSTOS_ERR_SEAL_MIGRATION_REQUIRED`.
   */
  startWrapped(
    wrapper: RootKeyWrapper,
    migrate?: { readonly devKeyFile?: string },
  ): Promise<{ initialized: boolean; migrated: boolean; awaitingShares: boolean }> {
    return this.#loadConfig().then(async (config) => {
      if (config === undefined) {
        try {
          await this.initialize({ type: 'wrapped', wrapper });
          return { initialized: true, migrated: false, awaitingShares: false };
        } catch (e) {
          if (!(e instanceof CustosError && e.code === 'CUSTOS_ERR_ALREADY_INITIALIZED')) throw e;
        }
        config = await this.#loadConfig();
      }
      if (config!.type === 'wrapped') {
        // Another wrapper type than the stored one is a migration between
        // roots of trust, which needs the old one: not supported here.
        if (config!.wrapper !== wrapper.type) throw new CustosError('CUSTOS_ERR_SEAL_MIGRATION_REQUIRED');
        this.#wrapper = wrapper;
        await this.#exclusive(() => this.#unsealWrapped(true));
        return { initialized: false, migrated: false, awaitingShares: false };
      }
      if (migrate === undefined) throw new CustosError('CUSTOS_ERR_SEAL_MIGRATION_REQUIRED');
      if (config!.type === 'dev') {
        if (migrate.devKeyFile === undefined) throw new CustosError('CUSTOS_ERR_SEAL_MIGRATION_REQUIRED');
        await this.unsealWithDevKey(migrate.devKeyFile);
        await this.#exclusive(() => this.#migrateTo(wrapper));
        return { initialized: false, migrated: true, awaitingShares: false };
      }
      this.#migrationTarget = wrapper;
      return { initialized: false, migrated: false, awaitingShares: true };
    });
  }

  /**
   * Unseals a `wrapped` store with its wrapper again — after the root of
   * trust came back (the health check's path). Unlike a start, it retires
   * nothing: after a rotate-seal the running node uses the new key while the
   * config file may still name the old one, and the old wrapping must stay
   * until a start under the new key proves the switch.
   */
  unsealWithWrapper(): Promise<SealStatus> {
    return this.#exclusive(() => this.#unsealWrapped(false));
  }

  /**
   * Finds the stored wrapping made with the configured seal key, unwraps it
   * (the root of trust checks the AAD binding the keyring id, seal
   * configuration and key description) and opens the keyring. At a start
   * (`retire`), wrappings older than the one used are deleted: the
   * configuration has switched to a newer seal key (see {@link rotateWrapper}).
   */
  async #unsealWrapped(retire: boolean): Promise<SealStatus> {
    const config = await this.#requireConfig('wrapped');
    const wrapper = this.#wrapper;
    if (wrapper === undefined) throw new CustosError('CUSTOS_ERR_SEAL_UNSUPPORTED');
    if (!this.barrier.sealed) return this.status();
    const rows = await readWrappedRootKeys(this.#store, config);
    const row = findWrappingFor(rows, wrapper);
    await this.#unsealWith(await unwrapRootKey(wrapper, config, row), config);
    if (retire) {
      try {
        await deleteOlderWrappings(this.#store, rows, row.generation);
        await deleteStaleKeyrings(this.#store, keyringBinding(config));
        await deleteStaleWrappings(this.#store, config);
      } catch {
        // Only tidiness: a leftover wrapping still needs its (retired) seal key.
      }
    }
    return this.status();
  }

  /**
   * `rotate-seal`: re-wraps the root key under `next` (another key of the
   * same root of trust) with no downtime: the node stays unsealed and the
   * root key and keyring are unchanged.
   *
   * Crash-safe ordering: (1) the new wrapping is stored as a new generation
   * and verified by unwrapping it; (2) the operator switches the server
   * config to the new key; (3) the next start under the new key deletes the
   * older generations. Until (3), both keys open the root key, so a crash or
   * a restart under either configuration still unseals.
   *
   * From now on this node checks `next` (health) and unseals with it after a
   * fault; `next` becomes this manager's, the previous wrapper is returned for
   * the caller to close.
   */
  rotateWrapper(next: RootKeyWrapper): Promise<{ generation: number; previous: RootKeyWrapper | undefined }> {
    return this.#exclusive(async () => {
      const config = await this.#requireConfig('wrapped');
      if (next.type !== config.wrapper) throw new CustosError('CUSTOS_ERR_SEAL_UNSUPPORTED');
      if (this.barrier.sealed) throw new SealedError();
      const rows = await readWrappedRootKeys(this.#store, config);
      const generation = (rows.at(-1)?.generation ?? 0) + 1;
      await this.barrier.withRootKey(async (rootKey) => {
        if (!(await storeWrappedRootKey(this.#store, next, config, rootKey, generation))) {
          // Another node rotated at the same moment: refuse rather than guess.
          throw new CustosError(
            'CUSTOS_ERR_ALREADY_EXISTS',
            'Another rotate-seal wrote this generation first; try again.',
          );
        }
        // Verify before anyone relies on it: the new key must give back this root key.
        const stored = findWrappingFor(await readWrappedRootKeys(this.#store, config), next);
        const back = await unwrapRootKey(next, config, stored);
        try {
          if (!timingSafeEqual(back, rootKey)) throw new IntegrityError();
        } finally {
          back.fill(0);
        }
      });
      const previous = this.#wrapper;
      this.#wrapper = next;
      return { generation, previous };
    });
  }

  /** Wrapped seals: the current wrapper's health check (nothing when it has none). */
  async checkWrapperHealth(): Promise<void> {
    const wrapper = this.#wrapper;
    if (wrapper !== undefined && hasHealthCheck(wrapper)) await wrapper.checkHealth();
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
      // The old seal has been presented: a pending migration runs now.
      if (this.#migrationTarget !== undefined) await this.#migrateTo(this.#migrationTarget);
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

  /**
   * Migrates an unsealed dev or Shamir store to the `wrapped` seal `wrapper`.
   * A NEW root key is made, so the old seal material (dev key file, Shamir
   * shares) opens nothing afterwards; the data keys are kept, so no stored
   * data is re-encrypted.
   *
   * Crash-safe by ordering, like initialisation: (1) every keyring term
   * re-encrypted under the new root key and a new keyring id bound to the
   * new configuration; (2) the new root key wrapped and stored; (3) the seal
   * configuration replaced — the one commit point; (4) the barrier switched
   * atomically to the new key; (5) the old keyring rows deleted. A crash
   * before (3) leaves the old seal in force and unreferenced rows that the
   * next initialisation or unseal deletes; after (3) the new seal is in force.
   * Single-node: a keyring rotation on another node during (1) is not seen.
   */
  async #migrateTo(wrapper: RootKeyWrapper): Promise<void> {
    const old = await this.#loadConfig();
    if (old === undefined || old.type === 'wrapped' || this.barrier.sealed)
      throw new CustosError('CUSTOS_ERR_SEAL_UNSUPPORTED');
    const next = newWrappedSealConfig(wrapper.type);
    const nextBinding = keyringBinding(next);
    const rootKey = randomBytes(KEY_BYTES);
    try {
      await this.barrier.withRootKey(async (oldRoot, oldBinding) => {
        const terms = await readTerms(this.#store, oldRoot, oldBinding);
        try {
          for (const [term, key] of terms) {
            if (!(await claimTerm(this.#store, rootKey, nextBinding, term, key))) throw new IntegrityError();
          }
        } finally {
          for (const key of terms.values()) key.fill(0);
        }
      });
      if (!(await storeWrappedRootKey(this.#store, wrapper, next, rootKey, 1))) throw new IntegrityError();
      await this.#store.put(SEAL_CONFIG_NAMESPACE, SEAL_CONFIG_KEY, Buffer.from(serializeSealConfig(next), 'utf8'));
      this.#config = next;
      this.#wrapper = wrapper;
      this.#migrationTarget = undefined;
      // The barrier swaps keys atomically (no sealed gap for requests).
      await this.barrier.unseal(Buffer.from(rootKey), nextBinding);
    } finally {
      rootKey.fill(0);
    }
    try {
      await deleteStaleKeyrings(this.#store, nextBinding);
      await deleteStaleWrappings(this.#store, next);
    } catch {
      // Only tidiness: the old rows open only with the old seal, now retired.
    }
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
