import { describe, expect, it } from 'vitest';
import type { StorageTx } from '../ports/storage.js';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { TransactionBatcher } from './transaction-batcher.js';

/** A transaction over the in-memory store that counts commits and rolls back on error. */
function countingStorage() {
  const entries = new MemoryEntryStore();
  let commits = 0;
  return {
    entries,
    commits: () => commits,
    transaction: async <T>(fn: (tx: StorageTx) => Promise<T>): Promise<T> => {
      const written: Array<[string, string, Uint8Array]> = [];
      const tx = {
        entries: { put: async (ns: string, key: string, value: Uint8Array) => void written.push([ns, key, value]) },
        audit: undefined as never,
      } as unknown as StorageTx;
      const result = await fn(tx);
      for (const [ns, key, value] of written) await entries.put(ns, key, value);
      commits++;
      return result;
    },
  };
}

describe('TransactionBatcher', () => {
  it('commits concurrent work in one transaction and resolves each caller after the commit', async () => {
    const storage = countingStorage();
    const batcher = new TransactionBatcher(storage);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        batcher.run(({ entries }) => entries.put('t', `k${i}`, new Uint8Array([i]))),
      ),
    );
    expect(storage.commits()).toBe(1);
    expect(await storage.entries.list('t', '')).toHaveLength(50);
  });

  it('a failing piece of work fails alone; the others are committed', async () => {
    const storage = countingStorage();
    const batcher = new TransactionBatcher(storage);
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        batcher.run(async ({ entries }) => {
          if (i === 2) throw new Error('bad write');
          await entries.put('t', `k${i}`, new Uint8Array([i]));
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((await storage.entries.list('t', '')).sort()).toEqual(['k0', 'k1', 'k3', 'k4']);
  });
});
