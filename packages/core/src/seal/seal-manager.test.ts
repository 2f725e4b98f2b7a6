import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Barrier } from '../barrier/barrier.js';
import { CustosError, SealedError } from '../errors/index.js';
import type { EntryStore } from '../ports/index.js';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { SealManager } from './seal-manager.js';

const AAD = 'kv.version\0kv/app/db\u00001';

function fakeSecret(): Uint8Array {
  return new TextEncoder().encode(`pw-${randomBytes(12).toString('hex')}`);
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CustosError);
  expect((error as CustosError).code).toBe(code);
}

/** Every k-element subset of `items`. */
function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  return items.flatMap((item, i) => subsets(items.slice(i + 1), k - 1).map((rest) => [item, ...rest]));
}

/** Spies on Barrier.unseal to keep the root-key buffers it is handed. */
function captureRootKeys() {
  const keys: Buffer[] = [];
  const original = Barrier.prototype.unseal;
  const spy = vi.spyOn(Barrier.prototype, 'unseal').mockImplementation(function (this: Barrier, key, binding) {
    keys.push(key);
    return original.call(this, key, binding);
  });
  return { keys, restore: () => spy.mockRestore() };
}

/** The store as seen by a process that dies when it writes the seal configuration. */
function crashOnSealConfig(store: MemoryEntryStore): EntryStore {
  return {
    get: (ns, key) => store.get(ns, key),
    put: (ns, key, value, options) => store.put(ns, key, value, options),
    putIfAbsent: async (ns, key, value, options) => {
      if (key === 'seal-config') throw new Error('simulated crash');
      return store.putIfAbsent(ns, key, value, options);
    },
    delete: (ns, key) => store.delete(ns, key),
    list: (ns, prefix, options) => store.list(ns, prefix, options),
    scan: (ns, prefix, options) => store.scan(ns, prefix, options),
    listExpired: (ns, now, limit) => store.listExpired(ns, now, limit),
  };
}

describe('SealManager — shamir', () => {
  async function initShamir() {
    const store = new MemoryEntryStore();
    const seals = new SealManager(store);
    const { shares } = await seals.initialize({ type: 'shamir', shares: 5, threshold: 3 });
    // Unsealed after init, so the caller can create the root token.
    expect(seals.barrier.sealed).toBe(false);
    const secret = fakeSecret();
    const blob = seals.barrier.encrypt(AAD, secret);
    await seals.seal();
    return { store, seals, shares: shares!, secret, blob };
  }

  it('returns 5 base64 shares once and stores only the configuration', async () => {
    const { store, shares, seals } = await initShamir();
    expect(shares).toHaveLength(5);
    expect(new Set(shares).size).toBe(5);
    for (const s of shares) expect(Buffer.from(s, 'base64')).toHaveLength(33);
    const config = await store.get('sys', 'seal-config');
    const text = new TextDecoder().decode(config!.value);
    expect(JSON.parse(text)).toMatchObject({ type: 'shamir', shares: 5, threshold: 3 });
    // No share is stored anywhere.
    for (const ns of ['sys']) {
      for (const row of await store.scan(ns, '')) {
        for (const s of shares) expect(Buffer.from(row.value).includes(Buffer.from(s, 'base64'))).toBe(false);
      }
    }
    expect(await seals.status()).toEqual({
      initialized: true,
      sealed: true,
      type: 'shamir',
      threshold: 3,
      shares: 5,
      progress: 0,
    });
  });

  it('unseals with any 3 of the 5 shares, and not with 2', async () => {
    const { store, shares, secret, blob } = await initShamir();
    const combos = subsets(shares, 3);
    expect(combos).toHaveLength(10);
    for (const combo of combos) {
      const seals = new SealManager(store);
      expect(await seals.submitUnsealShare(combo[0]!)).toMatchObject({ sealed: true, progress: 1 });
      expect(await seals.submitUnsealShare(combo[1]!)).toMatchObject({ sealed: true, progress: 2 });
      expect(seals.barrier.sealed).toBe(true); // 2 shares are not enough
      const status = await seals.submitUnsealShare(combo[2]!);
      expect(status).toEqual({ initialized: true, sealed: false, type: 'shamir', threshold: 3, shares: 5, term: 1 });
      expect(Buffer.from(seals.barrier.decrypt(AAD, blob)).equals(Buffer.from(secret))).toBe(true);
    }
  });

  it('a wrong share fails with UNSEAL_FAILED and resets progress', async () => {
    const { store, shares } = await initShamir();
    const other = await new SealManager(new MemoryEntryStore()).initialize({ type: 'shamir', shares: 5, threshold: 3 });
    const seals = new SealManager(store);
    await seals.submitUnsealShare(shares[0]!);
    await seals.submitUnsealShare(shares[1]!);
    // A well-formed share of another root key.
    await expectCode(seals.submitUnsealShare(other.shares![2]!), 'CUSTOS_ERR_UNSEAL_FAILED');
    expect(await seals.status()).toMatchObject({ sealed: true, progress: 0 });
    // Starting over with good shares works.
    for (const s of shares.slice(2)) await seals.submitUnsealShare(s);
    expect(seals.barrier.sealed).toBe(false);
  });

  it('a tampered share (same index, other bytes) is UNSEAL_FAILED, not a silent replacement', async () => {
    const { store, shares } = await initShamir();
    const seals = new SealManager(store);
    await seals.submitUnsealShare(shares[0]!);
    const tampered = Buffer.from(shares[0]!, 'base64');
    tampered[0]! ^= 1;
    await expectCode(seals.submitUnsealShare(tampered.toString('base64')), 'CUSTOS_ERR_UNSEAL_FAILED');
    expect((await seals.status()).progress).toBe(0);
  });

  it('does not count a duplicate share twice', async () => {
    const { store, shares } = await initShamir();
    const seals = new SealManager(store);
    for (let i = 0; i < 4; i++) {
      expect(await seals.submitUnsealShare(shares[0]!)).toMatchObject({ sealed: true, progress: 1 });
    }
    // Surrounding whitespace (from a paste) is the same share.
    expect(await seals.submitUnsealShare(` ${shares[0]!}\n`)).toMatchObject({ progress: 1 });
    await seals.submitUnsealShare(shares[1]!);
    expect(await seals.submitUnsealShare(shares[1]!)).toMatchObject({ sealed: true, progress: 2 });
    expect((await seals.submitUnsealShare(shares[4]!)).sealed).toBe(false);
  });

  it('rejects malformed shares with INVALID_SHARE and keeps progress', async () => {
    const { store, shares } = await initShamir();
    const seals = new SealManager(store);
    await seals.submitUnsealShare(shares[0]!);
    const zeroX = Buffer.from(shares[1]!, 'base64');
    zeroX[32] = 0;
    const malformed = [
      '',
      'not base64 at all!',
      shares[1]!.slice(0, -4),
      `${shares[1]!}AAAA`,
      Buffer.alloc(32, 7).toString('base64'),
      zeroX.toString('base64'),
      shares[1]!.replace(/.$/, '*'),
    ];
    for (const bad of malformed) {
      const error = await seals.submitUnsealShare(bad).catch((e: unknown) => e);
      expect((error as CustosError).code, JSON.stringify(bad)).toBe('CUSTOS_ERR_INVALID_SHARE');
      expect((error as CustosError).message).toBe('The unseal key share is malformed.');
    }
    expect((await seals.status()).progress).toBe(1);
  });

  it('seal() zeroes the root key and collected shares, and returns to sealed', async () => {
    const { store, shares, blob } = await initShamir();
    const seals = new SealManager(store);
    const capture = captureRootKeys();
    try {
      for (const s of shares.slice(0, 3)) await seals.submitUnsealShare(s);
      expect(capture.keys).toHaveLength(1);
      expect(capture.keys[0]!.some((b) => b !== 0)).toBe(true);
      await seals.seal();
      expect(capture.keys[0]!.every((b) => b === 0)).toBe(true);
      expect(() => seals.barrier.decrypt(AAD, blob)).toThrow(SealedError);
      expect(await seals.status()).toMatchObject({ sealed: true, progress: 0 });
    } finally {
      capture.restore();
    }
  });

  it('resetUnseal forgets the shares so far while sealed, and is refused (never a seal) once unsealed', async () => {
    const { store, shares, blob, secret } = await initShamir();
    const seals = new SealManager(store);
    await seals.submitUnsealShare(shares[0]!);
    await seals.submitUnsealShare(shares[1]!);
    expect(await seals.resetUnseal()).toMatchObject({ sealed: true, progress: 0 });
    // The two shares were forgotten: three more are needed.
    await seals.submitUnsealShare(shares[2]!);
    await seals.submitUnsealShare(shares[3]!);
    expect(seals.barrier.sealed).toBe(true);
    await seals.submitUnsealShare(shares[4]!);
    expect(seals.barrier.sealed).toBe(false);
    const sealHook = vi.fn();
    seals.onSeal(sealHook);
    await expectCode(seals.resetUnseal(), 'CUSTOS_ERR_NOT_SEALED');
    expect(seals.barrier.sealed).toBe(false);
    expect(sealHook).not.toHaveBeenCalled();
    expect(Buffer.from(seals.barrier.decrypt(AAD, blob)).equals(Buffer.from(secret))).toBe(true);
  });

  it('fails closed when the stored configuration is edited', async () => {
    const { store, shares } = await initShamir();
    const row = await store.get('sys', 'seal-config');
    const config = JSON.parse(new TextDecoder().decode(row!.value));
    // Lowering the threshold gains nothing: the keyring is bound to the
    // configuration, so even the right shares no longer unseal.
    await store.put('sys', 'seal-config', new TextEncoder().encode(JSON.stringify({ ...config, threshold: 2 })));
    const seals = new SealManager(store);
    await seals.submitUnsealShare(shares[0]!);
    await expectCode(seals.submitUnsealShare(shares[1]!), 'CUSTOS_ERR_UNSEAL_FAILED');
    // Nonsense in the configuration is an integrity failure, not a guess.
    await store.put('sys', 'seal-config', new TextEncoder().encode(JSON.stringify({ ...config, threshold: 1 })));
    await expectCode(new SealManager(store).status(), 'CUSTOS_ERR_INTEGRITY');
  });

  it('validates the share count and threshold', async () => {
    const seals = new SealManager(new MemoryEntryStore());
    for (const [shares, threshold] of [
      [5, 6],
      [5, 1],
      [256, 3],
      [3.5, 2],
    ] as const) {
      await expectCode(seals.initialize({ type: 'shamir', shares, threshold }), 'CUSTOS_ERR_VALIDATION');
    }
    expect((await seals.status()).initialized).toBe(false);
  });
});

describe('SealManager — lifecycle', () => {
  it('refuses a second initialisation, also from another node', async () => {
    const store = new MemoryEntryStore();
    const seals = new SealManager(store);
    await seals.initialize({ type: 'shamir', shares: 3, threshold: 2 });
    await expectCode(seals.initialize({ type: 'shamir', shares: 3, threshold: 2 }), 'CUSTOS_ERR_ALREADY_INITIALIZED');
    await expectCode(
      new SealManager(store).initialize({ type: 'shamir', shares: 3, threshold: 2 }),
      'CUSTOS_ERR_ALREADY_INITIALIZED',
    );
  });

  it('two nodes initialising at once: exactly one wins, and its shares work', async () => {
    const store = new MemoryEntryStore();
    const results = await Promise.allSettled([
      new SealManager(store).initialize({ type: 'shamir', shares: 3, threshold: 2 }),
      new SealManager(store).initialize({ type: 'shamir', shares: 3, threshold: 2 }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((lost.reason as CustosError).code).toBe('CUSTOS_ERR_ALREADY_INITIALIZED');
    const { shares } = (won[0] as PromiseFulfilledResult<{ shares?: string[] }>).value;
    const seals = new SealManager(store);
    await seals.submitUnsealShare(shares![0]!);
    expect((await seals.submitUnsealShare(shares![2]!)).sealed).toBe(false);
  });

  it('a crash half way through initialisation leaves a store that initialises again', async () => {
    const store = new MemoryEntryStore();
    // Die on the write of the seal configuration (after the keyring was written).
    const crashing = crashOnSealConfig(store);
    await expect(new SealManager(crashing).initialize({ type: 'shamir', shares: 3, threshold: 2 })).rejects.toThrow(
      'simulated crash',
    );
    expect(store.size('sys')).toBe(1); // an orphaned keyring row, nothing else
    const seals = new SealManager(store);
    expect((await seals.status()).initialized).toBe(false);
    const { shares } = await seals.initialize({ type: 'shamir', shares: 3, threshold: 2 });
    expect(store.size('sys')).toBe(2); // the live keyring row and the configuration
    await seals.seal();
    await seals.submitUnsealShare(shares![1]!);
    expect((await seals.submitUnsealShare(shares![2]!)).sealed).toBe(false);
  });

  it('rotates the keyring online and reports the term', async () => {
    const store = new MemoryEntryStore();
    const seals = new SealManager(store);
    const { shares } = await seals.initialize({ type: 'shamir', shares: 3, threshold: 2 });
    const secret = fakeSecret();
    const old = seals.barrier.encrypt(AAD, secret);
    expect(await seals.rotateKeyring()).toEqual({ term: 2 });
    expect((await seals.status()).term).toBe(2);
    await seals.seal();
    await expectCode(seals.rotateKeyring(), 'CUSTOS_ERR_SEALED');
    for (const s of shares!.slice(0, 2)) await seals.submitUnsealShare(s);
    expect((await seals.status()).term).toBe(2);
    expect(Buffer.from(seals.barrier.decrypt(AAD, old)).equals(Buffer.from(secret))).toBe(true);
  });

  it('runs onUnseal and onSeal hooks, and seals again if an onUnseal hook fails', async () => {
    const store = new MemoryEntryStore();
    const seals = new SealManager(store);
    const events: string[] = [];
    seals.onUnseal(() => {
      events.push(`unseal:${seals.barrier.sealed}`);
    });
    const off = seals.onSeal(async () => {
      events.push(`seal:${seals.barrier.sealed}`);
    });
    const { shares } = await seals.initialize({ type: 'shamir', shares: 3, threshold: 2 });
    await seals.seal();
    expect(events).toEqual(['unseal:false', 'seal:true']);
    off();
    seals.onUnseal(() => {
      throw new Error('service failed to load');
    });
    await seals.submitUnsealShare(shares![0]!);
    await expect(seals.submitUnsealShare(shares![1]!)).rejects.toThrow('service failed to load');
    expect(seals.barrier.sealed).toBe(true);
  });

  it('reports a store that is not initialised', async () => {
    const seals = new SealManager(new MemoryEntryStore());
    expect(await seals.status()).toEqual({ initialized: false, sealed: true, type: null });
    await expectCode(seals.submitUnsealShare('x'), 'CUSTOS_ERR_NOT_INITIALIZED');
    await expectCode(seals.unsealWithDevKey('/nonexistent'), 'CUSTOS_ERR_NOT_INITIALIZED');
  });
});

describe('SealManager — dev seal', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-seal-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the key file 0600 in a 0700 directory, and auto-unseals on the next start', async () => {
    const store = new MemoryEntryStore();
    const keyFile = join(dir, 'data', 'seal.key');
    const first = new SealManager(store);
    expect(await first.startDev(keyFile)).toEqual({ initialized: true });
    expect(first.barrier.sealed).toBe(false);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect((await stat(keyFile)).size).toBe(32);
    expect((await stat(join(dir, 'data'))).mode & 0o777).toBe(0o700);
    const secret = fakeSecret();
    const blob = first.barrier.encrypt(AAD, secret);

    const restart = new SealManager(store);
    expect(await restart.startDev(keyFile)).toEqual({ initialized: false });
    expect(await restart.status()).toEqual({ initialized: true, sealed: false, type: 'dev', term: 1 });
    expect(Buffer.from(restart.barrier.decrypt(AAD, blob)).equals(Buffer.from(secret))).toBe(true);
    await restart.seal();
    expect((await restart.unsealWithDevKey(keyFile)).sealed).toBe(false);
  });

  it('a crash before the configuration is written: the next start reuses the key file and initialises', async () => {
    const store = new MemoryEntryStore();
    const keyFile = join(dir, 'seal.key');
    await expect(new SealManager(crashOnSealConfig(store)).startDev(keyFile)).rejects.toThrow('simulated crash');
    const key = await readFile(keyFile);
    const seals = new SealManager(store);
    expect(await seals.startDev(keyFile)).toEqual({ initialized: true });
    expect((await readFile(keyFile)).equals(key)).toBe(true);
    expect(store.size('sys')).toBe(2); // the orphaned keyring row is gone
    await seals.seal();
    expect(await new SealManager(store).startDev(keyFile)).toEqual({ initialized: false });
  });

  it('refuses a key file readable by group or others', async () => {
    const store = new MemoryEntryStore();
    const keyFile = join(dir, 'seal.key');
    await new SealManager(store).startDev(keyFile);
    for (const mode of [0o644, 0o640, 0o604]) {
      await chmod(keyFile, mode);
      const seals = new SealManager(store);
      await expectCode(seals.unsealWithDevKey(keyFile), 'CUSTOS_ERR_INSECURE_KEY_FILE');
      expect(seals.barrier.sealed).toBe(true);
    }
    // Not silently fixed either: the operator decides.
    expect((await stat(keyFile)).mode & 0o777).toBe(0o604);
    await chmod(keyFile, 0o400);
    expect((await new SealManager(store).unsealWithDevKey(keyFile)).sealed).toBe(false);
  });

  it('refuses a wrong key file and a key file of the wrong size', async () => {
    const store = new MemoryEntryStore();
    await new SealManager(store).startDev(join(dir, 'seal.key'));
    const wrong = join(dir, 'wrong.key');
    await writeFile(wrong, randomBytes(32), { mode: 0o600 });
    await expectCode(new SealManager(store).unsealWithDevKey(wrong), 'CUSTOS_ERR_UNSEAL_FAILED');
    const short = join(dir, 'short.key');
    await writeFile(short, randomBytes(16), { mode: 0o600 });
    await expectCode(new SealManager(store).unsealWithDevKey(short), 'CUSTOS_ERR_UNSEAL_FAILED');
  });

  it('a dev store cannot be unsealed with shares, nor a shamir store with a key file', async () => {
    const store = new MemoryEntryStore();
    const seals = new SealManager(store);
    await seals.startDev(join(dir, 'seal.key'));
    await expectCode(seals.submitUnsealShare('x'), 'CUSTOS_ERR_SEAL_UNSUPPORTED');
    const shamirStore = new MemoryEntryStore();
    await new SealManager(shamirStore).initialize({ type: 'shamir', shares: 2, threshold: 2 });
    await expectCode(
      new SealManager(shamirStore).unsealWithDevKey(join(dir, 'seal.key')),
      'CUSTOS_ERR_SEAL_UNSUPPORTED',
    );
  });
});
