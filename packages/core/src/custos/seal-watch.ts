/** What {@link SealWatch} needs from the node; narrow so tests drive it directly. */
export interface SealWatchDeps {
  /** Between checks (and between attempts to unseal again once the root of trust is gone). */
  readonly intervalMs: number;
  /** True while the node is unsealed and serving. */
  isUnsealed(): boolean;
  /** Throws when the root of trust (HSM session, KMS key) is gone. */
  check(): Promise<void>;
  /** The root of trust is gone: audit it and seal (zero every key). */
  lost(error: unknown): Promise<void>;
  /** Tries to unseal again with the root of trust; throws while it is still gone. */
  recover(): Promise<void>;
  /** Unsealed again: audit it. */
  restored(): Promise<void>;
}

/**
 * The periodic health check of an auto-unseal seal.
 *
 * Why seal on a lost HSM at all, when the keys are already in memory: the
 * HSM (or KMS key) is the root of trust, and the operator's ways of revoking
 * it — pulling the token, disabling the key, removing the PIN — must take
 * effect on a running server too, not only at its next start. A node that
 * keeps serving after its root of trust is gone would make "remove the HSM"
 * an incomplete emergency stop.
 *
 * It only ever unseals what it sealed itself: a node sealed by an operator
 * (`custos operator seal`) or never unsealed is left alone, so an operator's
 * seal cannot be undone by a check that happens to pass.
 */
export class SealWatch {
  readonly #deps: SealWatchDeps;
  #timer: NodeJS.Timeout | undefined;
  /** Set while this watch holds the node sealed because the root of trust is gone. */
  #fault: unknown;
  #running: Promise<void> | undefined;

  constructor(deps: SealWatchDeps) {
    this.#deps = deps;
  }

  /** Why the watch sealed the node, while it holds it sealed. */
  get fault(): unknown {
    return this.#fault;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.tick().catch(() => {}), this.#deps.intervalMs);
    // A health check must never keep the process alive on its own.
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => {});
  }

  /** An operator sealed the node: whatever this watch held, it no longer unseals it. */
  forget(): void {
    this.#fault = undefined;
  }

  /** One check (or one attempt to recover); overlapping calls share the one in flight. */
  tick(): Promise<void> {
    this.#running ??= this.#tick().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #tick(): Promise<void> {
    if (this.#fault !== undefined) {
      try {
        await this.#deps.recover();
      } catch {
        return; // still gone: stay sealed, try again next interval
      }
      this.#fault = undefined;
      await this.#deps.restored();
      return;
    }
    if (!this.#deps.isUnsealed()) return;
    try {
      await this.#deps.check();
    } catch (error) {
      this.#fault = error;
      await this.#deps.lost(error);
    }
  }
}
