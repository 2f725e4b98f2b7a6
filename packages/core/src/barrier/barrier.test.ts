import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { CustosError, IntegrityError, SealedError } from '../errors/index.js';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { Barrier } from './barrier.js';
import { BLOB_HEADER_BYTES, MIN_BLOB_BYTES, NONCE_BYTES, TAG_BYTES } from './barrier-blob.js';
import { Keyring } from './keyring.js';
import type { KeyringBinding } from './keyring-store.js';

const AAD = 'kv.version\0kv/app/db\u00003';

function fakeSecret(): Uint8Array {
  return new TextEncoder().encode(`pw-${randomBytes(12).toString('hex')}`);
}

async function setup(store = new MemoryEntryStore()) {
  const binding: KeyringBinding = { keyringId: randomBytes(16).toString('hex'), context: 'test-context' };
  const rootKey = randomBytes(32);
  const barrier = new Barrier(store);
  await barrier.createKeyring(rootKey, binding);
  await barrier.unseal(Buffer.from(rootKey), binding);
  /** Another node: same store and root key, its own memory. */
  const peer = async () => {
    const other = new Barrier(store);
    await other.unseal(Buffer.from(rootKey), binding);
    return other;
  };
  return { store, binding, rootKey, barrier, peer };
}

function termOf(blob: Uint8Array): number {
  return Buffer.from(blob).readUInt32BE(1);
}

describe('Barrier', () => {
  it('round-trips a value, with a fresh nonce per write', async () => {
    const { barrier } = await setup();
    const secret = fakeSecret();
    const a = barrier.encrypt(AAD, secret);
    const b = barrier.encrypt(AAD, secret);
    expect(a.length).toBe(MIN_BLOB_BYTES + secret.length);
    expect(a[0]).toBe(0x01);
    expect(termOf(a)).toBe(1);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect(Buffer.from(barrier.decrypt(AAD, a)).equals(Buffer.from(secret))).toBe(true);
    expect(Buffer.from(await barrier.decryptAsync(AAD, b)).equals(Buffer.from(secret))).toBe(true);
    // Empty plaintext is a valid value too.
    expect(barrier.decrypt(AAD, barrier.encrypt(AAD, new Uint8Array(0))).length).toBe(0);
  });

  it('refuses a blob moved to another row (other AAD)', async () => {
    const { barrier } = await setup();
    const blob = barrier.encrypt(AAD, fakeSecret());
    expect(() => barrier.decrypt('kv.version\0kv/app/db\u00004', blob)).toThrow(IntegrityError);
    expect(() => barrier.decrypt('kv.version\0kv/app/other\u00003', blob)).toThrow(IntegrityError);
    await expect(barrier.decryptAsync('', blob)).rejects.toThrow(IntegrityError);
  });

  it('detects a flipped bit in every byte: header, nonce, ciphertext and tag', async () => {
    const { barrier } = await setup();
    const blob = barrier.encrypt(AAD, fakeSecret());
    const regions = new Set<string>();
    for (let i = 0; i < blob.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const tampered = Uint8Array.from(blob);
        tampered[i]! ^= bit;
        let error: unknown;
        try {
          barrier.decrypt(AAD, tampered);
        } catch (e) {
          error = e;
        }
        expect(error, `byte ${i}`).toBeInstanceOf(IntegrityError);
        // Fixed message: nothing about which check failed.
        expect((error as CustosError).message).toBe('Stored data failed its integrity check.');
      }
      regions.add(
        i < BLOB_HEADER_BYTES
          ? 'header'
          : i < BLOB_HEADER_BYTES + NONCE_BYTES
            ? 'nonce'
            : i < blob.length - TAG_BYTES
              ? 'ciphertext'
              : 'tag',
      );
    }
    expect([...regions]).toEqual(['header', 'nonce', 'ciphertext', 'tag']);
  });

  it('refuses truncated, extended and empty blobs', async () => {
    const { barrier } = await setup();
    const blob = barrier.encrypt(AAD, fakeSecret());
    expect(() => barrier.decrypt(AAD, blob.subarray(0, blob.length - 1))).toThrow(IntegrityError);
    expect(() => barrier.decrypt(AAD, Buffer.concat([blob, Buffer.from([0])]))).toThrow(IntegrityError);
    expect(() => barrier.decrypt(AAD, new Uint8Array(0))).toThrow(IntegrityError);
    expect(() => barrier.decrypt(AAD, blob.subarray(0, MIN_BLOB_BYTES - 1))).toThrow(IntegrityError);
  });

  it('refuses a blob whose tag was truncated (GCM tag length is pinned to 16)', async () => {
    const { barrier } = await setup();
    const blob = Buffer.from(barrier.encrypt(AAD, new Uint8Array(64)));
    // Drop 12 tag bytes: a decipher without authTagLength would accept a 4-byte tag.
    const short = blob.subarray(0, blob.length - 12);
    expect(() => barrier.decrypt(AAD, short)).toThrow(IntegrityError);
  });

  it('throws SealedError while sealed, and after seal()', async () => {
    const sealed = new Barrier(new MemoryEntryStore());
    expect(sealed.sealed).toBe(true);
    expect(sealed.term).toBeUndefined();
    expect(() => sealed.encrypt(AAD, fakeSecret())).toThrow(SealedError);
    expect(() => sealed.decrypt(AAD, new Uint8Array(40))).toThrow(SealedError);
    await expect(sealed.decryptAsync(AAD, new Uint8Array(40))).rejects.toThrow(SealedError);
    await expect(sealed.rotate()).rejects.toThrow(SealedError);

    const { barrier } = await setup();
    const blob = barrier.encrypt(AAD, fakeSecret());
    barrier.seal();
    expect(barrier.sealed).toBe(true);
    expect(() => barrier.decrypt(AAD, blob)).toThrow(SealedError);
    expect(() => barrier.encrypt(AAD, fakeSecret())).toThrow(SealedError);
    barrier.seal(); // idempotent
  });

  it('rotates: old blobs stay readable, new writes use the new term', async () => {
    const { barrier, peer } = await setup();
    const secret = fakeSecret();
    const old = barrier.encrypt(AAD, secret);
    expect(await barrier.rotate()).toBe(2);
    expect(barrier.term).toBe(2);
    const fresh = barrier.encrypt(AAD, secret);
    expect(termOf(old)).toBe(1);
    expect(termOf(fresh)).toBe(2);
    expect(Buffer.from(barrier.decrypt(AAD, old)).equals(Buffer.from(secret))).toBe(true);
    expect(Buffer.from(barrier.decrypt(AAD, fresh)).equals(Buffer.from(secret))).toBe(true);
    // Persisted before use: a node unsealing now sees term 2 at once.
    const other = await peer();
    expect(other.term).toBe(2);
    expect(Buffer.from(other.decrypt(AAD, fresh)).equals(Buffer.from(secret))).toBe(true);
  });

  it('reloads the keyring once when it meets a term another node added', async () => {
    const { store, barrier: a, peer } = await setup();
    const b = await peer();
    expect(await b.rotate()).toBe(2);
    const secret = fakeSecret();
    const blob = b.encrypt(AAD, secret);
    expect(termOf(blob)).toBe(2);
    expect(a.term).toBe(1);

    const scan = vi.spyOn(store, 'scan');
    const [x, y] = await Promise.all([a.decryptAsync(AAD, blob), a.decryptAsync(AAD, blob)]);
    expect(Buffer.from(x).equals(Buffer.from(secret))).toBe(true);
    expect(Buffer.from(y).equals(Buffer.from(secret))).toBe(true);
    expect(scan).toHaveBeenCalledTimes(1); // both misses shared one reload
    expect(a.term).toBe(2); // and a's new writes now use the newest term

    // A term nobody has: one reload, then IntegrityError.
    const forged = Buffer.from(blob);
    forged.writeUInt32BE(7, 1);
    scan.mockClear();
    await expect(a.decryptAsync(AAD, forged)).rejects.toThrow(IntegrityError);
    expect(scan).toHaveBeenCalledTimes(1);
  });

  it('sync decrypt of an unknown term fails but starts a reload, so a retry succeeds', async () => {
    const { barrier: a, peer } = await setup();
    const b = await peer();
    await b.rotate();
    const secret = fakeSecret();
    const blob = b.encrypt(AAD, secret);
    expect(() => a.decrypt(AAD, blob)).toThrow(IntegrityError);
    await a.reload();
    expect(Buffer.from(a.decrypt(AAD, blob)).equals(Buffer.from(secret))).toBe(true);
  });

  it('concurrent rotations on two nodes lose no term', async () => {
    const { barrier: a, peer } = await setup();
    const b = await peer();
    const terms = await Promise.all([a.rotate(), b.rotate(), a.rotate()]);
    expect([...terms].sort()).toEqual([2, 3, 4]);
    const c = await peer();
    expect(c.term).toBe(4);
    // Every term written by either node opens on a fresh node.
    for (const node of [a, b]) {
      const secret = fakeSecret();
      const blob = node.encrypt(AAD, secret);
      expect(Buffer.from(await c.decryptAsync(AAD, blob)).equals(Buffer.from(secret))).toBe(true);
    }
  });

  it('refuses to unseal with a wrong root key or a different binding', async () => {
    const { store, binding, rootKey } = await setup();
    const other = new Barrier(store);
    const wrong = randomBytes(32);
    await expect(other.unseal(wrong, binding)).rejects.toThrow(IntegrityError);
    expect(wrong.every((b) => b === 0)).toBe(true); // zeroed on failure
    await expect(other.unseal(Buffer.from(rootKey), { ...binding, context: 'edited' })).rejects.toThrow(IntegrityError);
    // A keyring id with no rows is not "unsealed with zero keys".
    await expect(
      other.unseal(Buffer.from(rootKey), { ...binding, keyringId: randomBytes(16).toString('hex') }),
    ).rejects.toThrow(IntegrityError);
    expect(other.sealed).toBe(true);
  });

  it('refuses a keyring row moved to another term', async () => {
    const { store, binding, rootKey, barrier } = await setup();
    await barrier.rotate();
    const rows = await store.scan('sys', `keyring/${binding.keyringId}/`);
    expect(rows.map((r) => r.key.slice(-2))).toEqual(['01', '02']);
    // Put term 1's record in place of term 2's.
    await store.put('sys', rows[1]!.key, rows[0]!.value);
    await expect(new Barrier(store).unseal(Buffer.from(rootKey), binding)).rejects.toThrow(IntegrityError);
  });

  it('seal() zeroes the root key and every data key', async () => {
    const captured: Buffer[] = [];
    // Capture the buffers the keyring takes ownership of.
    const original = Keyring.prototype.add;
    const spy = vi.spyOn(Keyring.prototype, 'add').mockImplementation(function (this: Keyring, term, key) {
      captured.push(key);
      original.call(this, term, key);
    });
    try {
      const { store, binding, rootKey } = await setup();
      const barrier = new Barrier(store);
      const owned = Buffer.from(rootKey);
      await barrier.unseal(owned, binding);
      await barrier.rotate();
      captured.length = 0;
      barrier.seal();
      const fresh = new Barrier(store);
      const owned2 = Buffer.from(rootKey);
      await fresh.unseal(owned2, binding);
      expect(captured.length).toBe(2);
      expect(captured.every((k) => k.some((b) => b !== 0))).toBe(true);
      fresh.seal();
      expect(owned.every((b) => b === 0)).toBe(true);
      expect(owned2.every((b) => b === 0)).toBe(true);
      expect(captured.every((k) => k.every((b) => b === 0))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('errors carry the catalogue code and nothing else', async () => {
    const { barrier } = await setup();
    try {
      barrier.decrypt(AAD, new Uint8Array(64));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CustosError);
      expect((e as CustosError).toJSON()).toEqual({
        code: 'CUSTOS_ERR_INTEGRITY',
        message: 'Stored data failed its integrity check.',
      });
      expect((e as Error).cause).toBeUndefined();
    }
  });
});
