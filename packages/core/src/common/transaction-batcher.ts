import type { Storage, StorageTx } from '../ports/storage.js';

interface Pending {
  readonly work: (tx: StorageTx) => Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for independent writes: work queued while a transaction is
 * being committed runs together in the next one, so N concurrent requests
 * cost one commit (one fsync) instead of N. Each caller's promise resolves
 * only after *its* work is committed.
 *
 * If a batch fails, each piece of work is retried alone, so one bad write
 * cannot fail its neighbours. Work must therefore be idempotent or
 * insert-only (it may run twice when the first, batched attempt rolled back).
 */
export class TransactionBatcher {
  readonly #storage: Pick<Storage, 'transaction'>;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #running = false;

  constructor(storage: Pick<Storage, 'transaction'>, options: { maxBatch?: number } = {}) {
    this.#storage = storage;
    this.#maxBatch = options.maxBatch ?? 256;
  }

  run(work: (tx: StorageTx) => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ work, resolve, reject });
      if (!this.#running) {
        this.#running = true;
        // Let the other requests of this tick join the batch.
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      try {
        await this.#storage.transaction(async (tx) => {
          for (const p of batch) await p.work(tx);
        });
        for (const p of batch) p.resolve();
      } catch (batchError) {
        if (batch.length === 1) {
          batch[0]!.reject(batchError);
          continue;
        }
        for (const p of batch) {
          try {
            await this.#storage.transaction(p.work);
            p.resolve();
          } catch (error) {
            p.reject(error);
          }
        }
      }
    }
    this.#running = false;
  }
}
