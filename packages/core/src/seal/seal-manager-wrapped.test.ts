import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CustosError } from '../errors/index.js';
import type { EntryStore } from '../ports/index.js';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { SoftwareRootKeyWrapper } from '../test-support/software-root-key-wrapper.js';
import { SealManager } from './seal-manager.js';

const AAD = 'kv.version\0kv/app/db\u00001';

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CustosError);
  return (error as CustosError).code;
}

function fakeSecret(): Uint8Array {
  return new TextEncoder().encode(`pw-${randomBytes(12).toString('hex')}`);
}

/** Rows of `sys` whose key starts with `prefix`. */
async function rows(store: EntryStore, prefix: string): Promise<string[]> {
  return store.list('sys', prefix, { limit: 1000 });
}

describe('SealManager — wrapped seal (auto-unseal)', () => {
  let store: MemoryEntryStore;
  let kek: Buffer;
  beforeEach(() => {
    store = new MemoryEntryStore();
    kek = randomBytes(32);
  });

  it('initialises on first start, then auto-unseals a fresh manager with the same key', async () => {
    const first = new SealManager(store);
    expect(await first.startWrapped(new SoftwareRootKeyWrapper('seal-a', kek))).toEqual({
      initialized: true,
      migrated: false,
      awaitingShares: false,
    });
    const blob = first.barrier.encrypt(AAD, fakeSecret());
    expect((await first.status()).wrapper).toBe('software');
    await first.seal();

    const second = new SealManager(store);
    const started = await second.startWrapped(new SoftwareRootKeyWrapper('seal-a', kek));
    expect(started.initialized).toBe(false);
    expect(second.barrier.sealed).toBe(false);
    expect(await second.barrier.decryptAsync(AAD, blob)).toBeDefined();
    expect((await second.status()).sealKey).toEqual({ key_label: 'seal-a' });
  });

  it('fails closed on a tampered wrapped blob (CUSTOS_ERR_UNSEAL_FAILED), writing nothing', async () => {
    await new SealManager(store).startWrapped(new SoftwareRootKeyWrapper('seal-a', kek));
    const [rowKey] = await rows(store, 'seal-wrapped/');
    const row = JSON.parse(Buffer.from((await store.get('sys', rowKey!))!.value).toString('utf8'));
    const blob = Buffer.from(row.blob, 'base64');
    blob[20]! ^= 1;
    await store.put('sys', rowKey!, Buffer.from(JSON.stringify({ ...row, blob: blob.toString('base64') })));
    const before = await rows(store, '');
    const manager = new SealManager(store);
    expect(await codeOf(manager.startWrapped(new SoftwareRootKeyWrapper('seal-a', kek)))).toBe(
      'CUSTOS_ERR_UNSEAL_FAILED',
    );
    expect(manager.barrier.sealed).toBe(true);
    expect(await rows(store, '')).toEqual(before);
  });

  it('fails closed when the key label stored with the blob is swapped (bound into the AAD)', async () => {
    await new SealManager(store).startWrapped(new SoftwareRootKeyWrapper('seal-a', kek));
    const [rowKey] = await rows(store, 'seal-wrapped/');
    const row = JSON.parse(Buffer.from((await store.get('sys', rowKey!))!.value).toString('utf8'));
    await store.put('sys', rowKey!, Buffer.from(JSON.stringify({ ...row, key: { key_label: 'seal-b' } })));
    // Same key material under another label: only the AAD binding can catch it.
    const manager = new SealManager(store);
    expect(await codeOf(manager.startWrapped(new SoftwareRootKeyWrapper('seal-b', kek)))).toBe(
      'CUSTOS_ERR_UNSEAL_FAILED',
    );
  });

  it('a config naming a key that never wrapped the root key is CUSTOS_ERR_SEAL_KEY_MISMATCH', async () => {
    await new SealManager(store).startWrapped(new SoftwareRootKeyWrapper('seal-a', kek));
    const manager = new SealManager(store);
    const error = await manager.startWrapped(new SoftwareRootKeyWrapper('other', randomBytes(32))).catch((e) => e);
    expect((error as CustosError).code).toBe('CUSTOS_ERR_SEAL_KEY_MISMATCH');
    expect((error as CustosError).message).toContain('seal-a');
  });

  it('another wrapper type than the stored one is CUSTOS_ERR_SEAL_MIGRATION_REQUIRED', async () => {
    await new SealManager(store).startWrapped(new SoftwareRootKeyWrapper('seal-a', kek));
    const other = new SoftwareRootKeyWrapper('seal-a', kek, 'awskms');
    expect(await codeOf(new SealManager(store).startWrapped(other))).toBe('CUSTOS_ERR_SEAL_MIGRATION_REQUIRED');
  });

  it('rotate-seal re-wraps without downtime; both keys unseal until the config switches, then the old is retired', async () => {
    const manager = new SealManager(store);
    await manager.startWrapped(new SoftwareRootKeyWrapper('seal-a', kek));
    const blob = manager.barrier.encrypt(AAD, fakeSecret());
    const kekB = randomBytes(32);
    const { generation } = await manager.rotateWrapper(new SoftwareRootKeyWrapper('seal-b', kekB));
    expect(generation).toBe(2);
    expect(manager.barrier.sealed).toBe(false);
    expect((await manager.status()).sealKey).toEqual({ key_label: 'seal-b' });

    // Crash before the operator switched the config: the old key still unseals, and keeps the new row.
    const old = new SealManager(store);
    await old.startWrapped(new SoftwareRootKeyWrapper('seal-a', kek));
    expect(await rows(store, 'seal-wrapped/')).toHaveLength(2);

    // Config switched: the new key unseals and the older wrapping is deleted.
    const switched = new SealManager(store);
    await switched.startWrapped(new SoftwareRootKeyWrapper('seal-b', kekB));
    expect(await switched.barrier.decryptAsync(AAD, blob)).toBeDefined();
    expect(await rows(store, 'seal-wrapped/')).toHaveLength(1);
    expect(await codeOf(new SealManager(store).startWrapped(new SoftwareRootKeyWrapper('seal-a', kek)))).toBe(
      'CUSTOS_ERR_SEAL_KEY_MISMATCH',
    );
  });

  it('unsealing again after a fault (not a start) retires nothing: the config may still name the old key', async () => {
    const manager = new SealManager(store);
    await manager.startWrapped(new SoftwareRootKeyWrapper('seal-a', kek));
    const next = new SoftwareRootKeyWrapper('seal-b', randomBytes(32));
    await manager.rotateWrapper(next);
    // The HSM goes away and comes back: the node unseals again with the new key…
    await manager.seal();
    await manager.unsealWithWrapper();
    expect(manager.barrier.sealed).toBe(false);
    // …and a restart under the old config still works.
    expect(await rows(store, 'seal-wrapped/')).toHaveLength(2);
    await new SealManager(store).startWrapped(new SoftwareRootKeyWrapper('seal-a', kek));
  });

  it('rotate-seal to a wrapper of another type is refused', async () => {
    const manager = new SealManager(store);
    await manager.startWrapped(new SoftwareRootKeyWrapper('seal-a', kek));
    expect(await codeOf(manager.rotateWrapper(new SoftwareRootKeyWrapper('x', kek, 'awskms')))).toBe(
      'CUSTOS_ERR_SEAL_UNSUPPORTED',
    );
  });

  it('unseals again with unsealWithWrapper after a seal (the path the health check takes)', async () => {
    const wrapper = new SoftwareRootKeyWrapper('seal-a', kek);
    const manager = new SealManager(store);
    await manager.startWrapped(wrapper);
    wrapper.available = false;
    expect(await codeOf(manager.checkWrapperHealth())).toBe('CUSTOS_ERR_SEAL_UNAVAILABLE');
    await manager.seal();
    expect(await codeOf(manager.unsealWithWrapper())).toBe('CUSTOS_ERR_SEAL_UNAVAILABLE');
    wrapper.available = true;
    await manager.unsealWithWrapper();
    expect(manager.barrier.sealed).toBe(false);
  });
});

describe('SealManager — migration to a wrapped seal', () => {
  let store: MemoryEntryStore;
  let dir: string;
  beforeEach(async () => {
    store = new MemoryEntryStore();
    dir = await mkdtemp(join(tmpdir(), 'custos-migrate-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('dev → wrapped: needs --migrate-seal, keeps the data, and the dev key file opens nothing afterwards', async () => {
    const keyFile = join(dir, 'seal.key');
    const dev = new SealManager(store);
    await dev.startDev(keyFile);
    const blob = dev.barrier.encrypt(AAD, fakeSecret());
    await dev.rotateKeyring();
    const blob2 = dev.barrier.encrypt(AAD, fakeSecret());
    await dev.seal();

    const wrapper = new SoftwareRootKeyWrapper('seal-a');
    expect(await codeOf(new SealManager(store).startWrapped(wrapper))).toBe('CUSTOS_ERR_SEAL_MIGRATION_REQUIRED');
    // The old seal must be presented: a migration without the key file is refused.
    expect(await codeOf(new SealManager(store).startWrapped(wrapper, {}))).toBe('CUSTOS_ERR_SEAL_MIGRATION_REQUIRED');

    const migrating = new SealManager(store);
    expect((await migrating.startWrapped(wrapper, { devKeyFile: keyFile })).migrated).toBe(true);
    expect(await migrating.barrier.decryptAsync(AAD, blob)).toBeDefined();
    expect((await migrating.status()).type).toBe('wrapped');
    await migrating.seal();

    const after = new SealManager(store);
    await after.startWrapped(wrapper);
    expect(await after.barrier.decryptAsync(AAD, blob2)).toBeDefined();
    // One keyring left (the new one), every term copied.
    expect(await rows(store, 'keyring/')).toHaveLength(2);
    expect(await codeOf(new SealManager(store).unsealWithDevKey(keyFile))).toBe('CUSTOS_ERR_SEAL_UNSUPPORTED');
  });

  it('shamir → wrapped: stays sealed until a threshold of old shares is presented, then migrates', async () => {
    const shamir = new SealManager(store);
    const { shares } = await shamir.initialize({ type: 'shamir', shares: 3, threshold: 2 });
    const blob = shamir.barrier.encrypt(AAD, fakeSecret());
    await shamir.seal();

    const wrapper = new SoftwareRootKeyWrapper('seal-a');
    const migrating = new SealManager(store);
    expect(await migrating.startWrapped(wrapper, {})).toEqual({
      initialized: false,
      migrated: false,
      awaitingShares: true,
    });
    expect((await migrating.status()).migrationTo).toBe('software');
    await migrating.submitUnsealShare(shares![0]!);
    expect(migrating.barrier.sealed).toBe(true);
    await migrating.submitUnsealShare(shares![2]!);
    expect((await migrating.status()).type).toBe('wrapped');
    expect(await migrating.barrier.decryptAsync(AAD, blob)).toBeDefined();
    await migrating.seal();

    const after = new SealManager(store);
    await after.startWrapped(wrapper);
    expect(await after.barrier.decryptAsync(AAD, blob)).toBeDefined();
  });

  it('a crash before the configuration switch leaves the old seal in force; retrying migrates', async () => {
    const keyFile = join(dir, 'seal.key');
    const dev = new SealManager(store);
    await dev.startDev(keyFile);
    const blob = dev.barrier.encrypt(AAD, fakeSecret());
    await dev.seal();

    const crashing: EntryStore = {
      get: (ns, key) => store.get(ns, key),
      put: async (ns, key, value, options) => {
        if (key === 'seal-config') throw new Error('simulated crash');
        return store.put(ns, key, value, options);
      },
      putIfAbsent: (ns, key, value, options) => store.putIfAbsent(ns, key, value, options),
      delete: (ns, key) => store.delete(ns, key),
      list: (ns, prefix, options) => store.list(ns, prefix, options),
      scan: (ns, prefix, options) => store.scan(ns, prefix, options),
      listExpired: (ns, now, limit) => store.listExpired(ns, now, limit),
    };
    const wrapper = new SoftwareRootKeyWrapper('seal-a');
    await expect(new SealManager(crashing).startWrapped(wrapper, { devKeyFile: keyFile })).rejects.toThrow(
      'simulated crash',
    );
    const stillDev = new SealManager(store);
    await stillDev.startDev(keyFile);
    expect(await stillDev.barrier.decryptAsync(AAD, blob)).toBeDefined();
    await stillDev.seal();

    const retry = new SealManager(store);
    await retry.startWrapped(wrapper, { devKeyFile: keyFile });
    expect(await retry.barrier.decryptAsync(AAD, blob)).toBeDefined();
    // The crashed attempt's rows are gone: one keyring, one wrapping.
    expect(await rows(store, 'keyring/')).toHaveLength(1);
    expect(await rows(store, 'seal-wrapped/')).toHaveLength(1);
  });
});
