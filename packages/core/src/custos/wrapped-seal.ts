import { AuditIntegrityError, CustosError, type ErrorCode } from '../errors/index.js';
import type {
  RootKeyWrapper,
  RootKeyWrapperRekey,
  RootKeyWrapperTarget,
  SealManager,
  SealStatus,
} from '../seal/index.js';
import { SealWatch } from './seal-watch.js';

/** The auto-unseal seal family: the root key wrapped by an HSM or KMS key. */
export interface WrappedSealOptions {
  readonly type: 'wrapped';
  /** The configured wrapper; the node owns it from here and closes it. */
  readonly wrapper: RootKeyWrapper;
  /** Opens a wrapper for another key of the same root of trust (`rotate-seal`); without it rotation is unsupported. */
  readonly rekey?: RootKeyWrapperRekey;
  /**
   * Migrate a store sealed by `dev` or `shamir` to this seal (`--migrate-seal`).
   * `devKeyFile`: the old dev seal's key file, read once; for Shamir the node
   * starts sealed and migrates once a threshold of shares is submitted.
   */
  readonly migrate?: { readonly devKeyFile?: string };
  /** Between health checks of the root of trust (default 5 s). */
  readonly healthIntervalMs?: number;
}

/** Details of a `system` audit event about the seal: labels, counts and codes only. */
export type SealAuditDetails = { [name: string]: string | number | { [name: string]: string } };

/** What the wrapped seal needs from its node. */
export interface WrappedSealDeps {
  readonly seals: SealManager;
  /** True while the node serves (services loaded). */
  isUnsealed(): boolean;
  /** Records a `system` audit event (nothing when the node is sealed). */
  audit(kind: string, extra: { error_code?: string; details?: SealAuditDetails }): Promise<void>;
  /** Creates the root token after a first start initialised the store. */
  issueRootToken(): Promise<unknown>;
}

const SEAL_HEALTH_INTERVAL_MS = 5_000;

/**
 * A node's wrapped seal at run time: the auto-unseal start (and a pending
 * migration), rotate-seal, and the health watch that seals the node when
 * the root of trust goes away. Kept out of the node, which only wires it.
 */
export class WrappedSeal {
  readonly #options: WrappedSealOptions;
  readonly #deps: WrappedSealDeps;
  readonly #watch: SealWatch;
  /** The wrapper in use (replaced by rotate-seal); closed by {@link close}. */
  #wrapper: RootKeyWrapper | undefined;
  /** A migration from Shamir waits for the old shares. */
  #awaitingShares = false;

  constructor(options: WrappedSealOptions, deps: WrappedSealDeps) {
    this.#options = options;
    this.#deps = deps;
    this.#wrapper = options.wrapper;
    this.#watch = new SealWatch({
      intervalMs: options.healthIntervalMs ?? SEAL_HEALTH_INTERVAL_MS,
      isUnsealed: deps.isUnsealed,
      check: () => deps.seals.checkWrapperHealth(),
      lost: (error) => this.#lost(error),
      recover: async () => {
        await deps.seals.unsealWithWrapper();
      },
      restored: () => deps.audit('seal_key_restored', {}),
    });
  }

  /**
   * Auto-unseals (or initialises, or migrates from dev), then starts the
   * health watch. An audit log that fails its check leaves the node sealed
   * (the node reports why), anything else stops the start.
   */
  async start(): Promise<void> {
    try {
      const started = await this.#deps.seals.startWrapped(this.#options.wrapper, this.#options.migrate);
      if (started.initialized) await this.#deps.issueRootToken();
      if (started.migrated) await this.#auditMigration('dev', await this.#deps.seals.status());
      this.#awaitingShares = started.awaitingShares;
    } catch (error) {
      if (!(error instanceof AuditIntegrityError)) throw error;
    }
    this.#watch.start();
  }

  /** Called with the status after each unseal share: the last share of a pending migration migrated the store. */
  async afterShare(status: SealStatus): Promise<void> {
    if (!this.#awaitingShares || status.type !== 'wrapped') return;
    this.#awaitingShares = false;
    await this.#auditMigration('shamir', status);
  }

  /** The code the node is sealed with because the root of trust went away, if it is. */
  faultCode(): ErrorCode | undefined {
    const fault = this.#watch.fault;
    return fault === undefined ? undefined : faultError(fault).code;
  }

  /** An operator sealed the node: the health check must not unseal it again. */
  operatorSealed(): void {
    this.#watch.forget();
  }

  /**
   * `rotate-seal`: re-wraps the root key under another key of the same root
   * of trust, with no downtime (see SealManager.rotateWrapper for the
   * crash-safe ordering). The operator then switches the server config to
   * the new key; the next start retires the old wrapping.
   */
  async rotate(target: RootKeyWrapperTarget): Promise<{ generation: number; sealKey: Record<string, string> }> {
    if (this.#options.rekey === undefined) throw new CustosError('CUSTOS_ERR_SEAL_UNSUPPORTED');
    const next = await this.#options.rekey(target);
    let rotated: Awaited<ReturnType<SealManager['rotateWrapper']>>;
    try {
      rotated = await this.#deps.seals.rotateWrapper(next);
    } catch (error) {
      await next.close().catch(() => {});
      throw error;
    }
    this.#wrapper = next;
    await rotated.previous?.close().catch(() => {});
    const sealKey = { ...next.describe() };
    await this.#deps.audit('seal_rotated', { details: { generation: rotated.generation, seal_key: sealKey } });
    return { generation: rotated.generation, sealKey };
  }

  /** Stops the watch (the node closes its services), then the wrapper. */
  async stopWatch(): Promise<void> {
    await this.#watch.stop();
  }

  async close(): Promise<void> {
    await this.#watch.stop();
    await this.#wrapper?.close().catch(() => {});
    this.#wrapper = undefined;
  }

  /**
   * The root of trust went away while unsealed: audit it while the audit log
   * is still open (so the record is signed like any other), then seal —
   * zeroing the root key and every data key.
   */
  async #lost(error: unknown): Promise<void> {
    await this.#deps.audit('seal_key_unavailable', { error_code: faultError(error).code }).catch(() => {});
    await this.#deps.seals.seal();
  }

  /** A `seal_migrated` system event: from which seal to which wrapper and key (non-secret labels only). */
  async #auditMigration(from: string, status: SealStatus): Promise<void> {
    await this.#deps.audit('seal_migrated', {
      details: { from, to: status.wrapper ?? 'wrapped', seal_key: { ...(status.sealKey ?? {}) } },
    });
  }
}

/**
 * The error for a lost root of trust. The wrapper's own code is kept when it
 * has one (wrong PIN, key gone); anything else is `CUSTOS_ERR_SEAL_UNAVAILABLE`.
 */
function faultError(error: unknown): CustosError {
  return error instanceof CustosError ? error : new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE');
}
