import { randomBytes } from 'node:crypto';
import { Barrier } from '../../barrier/index.js';
import type { EntryStore } from '../../ports/storage.js';
import { MemoryEntryStore } from '../../test-support/memory-entry-store.js';
import { TaskSigningKeys, type TaskSigningKeysOptions } from '../task-signing-keys.js';

/** A mutable fake clock (epoch ms) for key rotation and expiry tests. */
export class FakeClock {
  constructor(public ms = Date.UTC(2030, 0, 1, 12, 0, 0)) {}
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/**
 * A real barrier over an in-memory store, and a way to start more nodes on
 * the same store and root key (each its own barrier and its own key set).
 */
export async function taskKeysFixture(
  options: TaskSigningKeysOptions = {},
  store: EntryStore = new MemoryEntryStore(),
) {
  const binding = { keyringId: randomBytes(16).toString('hex'), context: 'task-token-test' };
  const rootKey = randomBytes(32);
  const bootstrap = new Barrier(store);
  await bootstrap.createKeyring(rootKey, binding);
  const node = async (nodeOptions: TaskSigningKeysOptions = options) => {
    const barrier = new Barrier(store);
    await barrier.unseal(Buffer.from(rootKey), binding);
    const keys = await TaskSigningKeys.load(store, barrier, nodeOptions);
    return { barrier, keys };
  };
  const first = await node();
  return { store, ...first, node };
}
