import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { DPOP_REPLAY_SKEW_MARGIN_MS, StorageDpopReplayCache } from './dpop-storage-replay-cache.js';

const key = () => `jkt-${randomBytes(8).toString('hex')}:${randomBytes(16).toString('base64url')}`;

describe('StorageDpopReplayCache', () => {
  it('accepts a proof once, on every cache sharing the store (another node, or after a restart)', async () => {
    const store = new MemoryEntryStore();
    const nodeA = new StorageDpopReplayCache(store);
    const nodeB = new StorageDpopReplayCache(store);
    const proof = key();
    const expires = Date.now() + 60_000;
    expect(await nodeA.seen(proof, expires)).toBe(false);
    expect(await nodeA.seen(proof, expires)).toBe(true);
    expect(await nodeB.seen(proof, expires)).toBe(true);
    expect(await nodeB.seen(key(), expires)).toBe(false);
  });

  it('stores a fixed-size hash, never the client-chosen key', async () => {
    const store = new MemoryEntryStore();
    const proof = `${'x'.repeat(300)}:jti`;
    await new StorageDpopReplayCache(store).seen(proof, Date.now() + 60_000);
    const [stored] = await store.list('dpop.jti', '');
    expect(stored).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reaps entries past their window plus a clock-skew margin, and keeps live ones', async () => {
    const store = new MemoryEntryStore();
    let now = 1_000_000;
    const cache = new StorageDpopReplayCache(store, () => now);
    await cache.seen(key(), now + 60_000);
    const live = key();
    await cache.seen(live, now + 120_000);
    // Past the first proof's window, but a node whose clock runs behind may still be inside it: kept.
    now += 90_000;
    expect(await cache.reapExpired()).toBe(0);
    now += DPOP_REPLAY_SKEW_MARGIN_MS;
    expect(await cache.reapExpired()).toBe(1);
    expect(await store.list('dpop.jti', '')).toHaveLength(1);
    expect(await cache.seen(live, now + 120_000)).toBe(true);
  });

  it('reaps in as many batches as it takes, so a steady load does not pile up', async () => {
    const store = new MemoryEntryStore();
    let now = 1_000_000;
    const cache = new StorageDpopReplayCache(store, () => now);
    for (let i = 0; i < 250; i++) await cache.seen(key(), now + 60_000);
    now += 60_000 + DPOP_REPLAY_SKEW_MARGIN_MS + 1;
    expect(await cache.reapExpired(40)).toBe(250);
    expect(await store.list('dpop.jti', '')).toHaveLength(0);
  });

  it('fails closed: a storage error is thrown, so the proof is refused', async () => {
    const store = new MemoryEntryStore();
    store.putIfAbsent = () => Promise.reject(new Error('storage down'));
    await expect(new StorageDpopReplayCache(store).seen(key(), Date.now() + 60_000)).rejects.toThrow('storage down');
  });
});
