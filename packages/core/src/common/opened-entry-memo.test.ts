import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { Barrier } from '../barrier/barrier.js';
import { IntegrityError, SealedError } from '../errors/index.js';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { sealJson } from './cipher.js';
import { OpenedEntryMemo } from './opened-entry-memo.js';

async function unsealedBarrier(): Promise<Barrier> {
  const binding = { keyringId: randomBytes(16).toString('hex'), context: 'test-context' };
  const rootKey = randomBytes(32);
  const barrier = new Barrier(new MemoryEntryStore());
  await barrier.createKeyring(rootKey, binding);
  await barrier.unseal(Buffer.from(rootKey), binding);
  return barrier;
}

describe('OpenedEntryMemo', () => {
  it('decrypts the same stored bytes once, and hands out a fresh object each time', async () => {
    const barrier = await unsealedBarrier();
    const decrypt = vi.spyOn(barrier, 'decryptAsync');
    const memo = new OpenedEntryMemo();
    const blob = sealJson(barrier, 'token', 'id-1', {
      policies: ['a'],
      accessor: `acc_${randomBytes(4).toString('hex')}`,
    });
    const first = await memo.openJson<{ policies: string[] }>(barrier, 'token', 'id-1', blob);
    first.policies.push('changed-by-caller');
    const second = await memo.openJson<{ policies: string[] }>(barrier, 'token', 'id-1', new Uint8Array(blob));
    expect(second.policies).toEqual(['a']);
    expect(decrypt).toHaveBeenCalledTimes(1);
  });

  it('decrypts again when the stored bytes change (a new version, or another node wrote it)', async () => {
    const barrier = await unsealedBarrier();
    const memo = new OpenedEntryMemo();
    await memo.openJson(barrier, 'token', 'id-1', sealJson(barrier, 'token', 'id-1', { v: 1 }));
    expect(await memo.openJson(barrier, 'token', 'id-1', sealJson(barrier, 'token', 'id-1', { v: 2 }))).toEqual({
      v: 2,
    });
  });

  it('never answers for altered bytes or bytes moved to another row: those are decrypted and refused', async () => {
    const barrier = await unsealedBarrier();
    const memo = new OpenedEntryMemo();
    const blob = sealJson(barrier, 'token', 'id-1', { v: 1 });
    await memo.openJson(barrier, 'token', 'id-1', blob);
    const flipped = new Uint8Array(blob);
    flipped[flipped.length - 1]! ^= 0x01;
    await expect(memo.openJson(barrier, 'token', 'id-1', flipped)).rejects.toBeInstanceOf(IntegrityError);
    await expect(memo.openJson(barrier, 'token', 'id-2', blob)).rejects.toBeInstanceOf(IntegrityError);
    // The good bytes still open.
    expect(await memo.openJson(barrier, 'token', 'id-1', blob)).toEqual({ v: 1 });
  });

  it('serves nothing once the barrier is sealed', async () => {
    const barrier = await unsealedBarrier();
    const memo = new OpenedEntryMemo();
    const blob = sealJson(barrier, 'token', 'id-1', { v: 1 });
    await memo.openJson(barrier, 'token', 'id-1', blob);
    barrier.seal();
    await expect(memo.openJson(barrier, 'token', 'id-1', blob)).rejects.toBeInstanceOf(SealedError);
  });

  it('keeps within its byte budget, dropping the oldest', async () => {
    const barrier = await unsealedBarrier();
    const decrypt = vi.spyOn(barrier, 'decryptAsync');
    // Each record costs about 70 bytes (a 42-byte blob, 9 characters of JSON, a 4-character AAD): two fit in 150.
    const memo = new OpenedEntryMemo(100, 150);
    const blobs = ['a', 'b', 'c'].map((k) => sealJson(barrier, 'ns', k, { k }));
    for (const [i, k] of ['a', 'b', 'c'].entries()) await memo.openJson(barrier, 'ns', k, blobs[i]!);
    expect(decrypt).toHaveBeenCalledTimes(3);
    await memo.openJson(barrier, 'ns', 'c', blobs[2]!);
    expect(decrypt).toHaveBeenCalledTimes(3);
    await memo.openJson(barrier, 'ns', 'a', blobs[0]!);
    expect(decrypt).toHaveBeenCalledTimes(4);
  });

  it('keeps at most maxEntries records, dropping the oldest', async () => {
    const barrier = await unsealedBarrier();
    const decrypt = vi.spyOn(barrier, 'decryptAsync');
    const memo = new OpenedEntryMemo(2);
    const blobs = ['a', 'b', 'c'].map((k) => sealJson(barrier, 'ns', k, { k }));
    for (const [i, k] of ['a', 'b', 'c'].entries()) await memo.openJson(barrier, 'ns', k, blobs[i]!);
    await memo.openJson(barrier, 'ns', 'c', blobs[2]!);
    expect(decrypt).toHaveBeenCalledTimes(3);
    await memo.openJson(barrier, 'ns', 'a', blobs[0]!);
    expect(decrypt).toHaveBeenCalledTimes(4);
  });
});
