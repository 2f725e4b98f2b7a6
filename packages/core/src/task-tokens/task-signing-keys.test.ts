import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { Barrier } from '../barrier/index.js';
import { CustosError, IntegrityError, SealedError } from '../errors/index.js';
import type { EntryStore } from '../ports/storage.js';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { decodeSigningKeyRecord, encodeSigningKeyRecord } from './task-signing-key-record.js';
import { TaskSigningKeys } from './task-signing-keys.js';
import { TASK_TOKEN_TYP } from './task-token-claims.js';
import { TaskTokenInvalidError } from './task-token-error.js';
import { issueTaskToken } from './task-token-issue.js';
import { encodeTaskTokenHeader } from './task-token-jws.js';
import { verifyTaskToken } from './task-token-verify.js';
import { FakeClock, taskKeysFixture } from './test-support/task-keys-fixture.js';

const ISSUER = 'https://custos.test';
const AUDIENCE = 'custos';
const MINUTE = 60_000;

function rootInput(clock: FakeClock, ttlSec = 600) {
  return {
    sub: 'role:enricher/bootstrap:test',
    task_id: `tsk_${Math.random().toString(36).slice(2)}`,
    depth: 0,
    role: 'enricher',
    scope: 'read:kv/app/*',
    exp: Math.floor(clock.ms / 1000) + ttlSec,
  };
}

const issueWith = (keys: TaskSigningKeys, clock: FakeClock, ttlSec?: number) =>
  issueTaskToken(rootInput(clock, ttlSec), { keys, issuer: ISSUER, audience: AUDIENCE, now: clock.ms });
const verifyWith = (keys: TaskSigningKeys, token: string, clock: FakeClock) =>
  verifyTaskToken(token, { keys, issuer: ISSUER, audience: AUDIENCE, now: clock.ms, clockToleranceSec: 0 });
const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid as string;

/** Counts storage scans, to see how often key sets reload. */
function countingStore(inner: EntryStore): EntryStore & { scans: number } {
  const counted = Object.create(inner) as EntryStore & { scans: number };
  counted.scans = 0;
  counted.scan = (...args) => {
    counted.scans++;
    return inner.scan(...args);
  };
  for (const m of ['get', 'put', 'putIfAbsent', 'delete', 'list', 'listExpired'] as const) {
    (counted as unknown as Record<string, unknown>)[m] = (inner[m] as (...a: unknown[]) => unknown).bind(inner);
  }
  return counted;
}

describe('TaskSigningKeys', () => {
  it('creates one key on first load, stored only as ciphertext under sys/task-signing-key/<generation>', async () => {
    const { keys, store, barrier } = await taskKeysFixture();
    const stored = await store.scan('sys', 'task-signing-key/');
    expect(stored.map((e) => e.key)).toEqual(['task-signing-key/0000000001']);
    const jwks = keys.jwks();
    expect(jwks.keys).toHaveLength(1);
    const jwk = jwks.keys[0]!;
    expect(jwk).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      x: expect.any(String),
      kid: keys.activeKid,
      alg: 'EdDSA',
      use: 'sig',
    });
    expect(Object.keys(jwk)).not.toContain('d');
    // The private seed is not in the stored blob; the blob opens only for its own row.
    const seed = (await keys.signingKey()).privateKey.export({ format: 'jwk' }).d!;
    const blob = Buffer.from(stored[0]!.value);
    expect(blob.includes(Buffer.from(seed, 'base64url'))).toBe(false);
    expect(() => barrier.decrypt('sys\0task-signing-key/0000000002', blob)).toThrow(IntegrityError);
  });

  it('two nodes starting on an empty store agree on one key', async () => {
    const store = new MemoryEntryStore();
    const { node } = await taskKeysFixture({}, store);
    const [a, b] = await Promise.all([node(), node()]);
    expect((await store.list('sys', 'task-signing-key/')).length).toBe(1);
    expect(a.keys.activeKid).toBe(b.keys.activeKid);
  });

  it('rotation signs with the new key, keeps old tokens verifiable and lists both keys in the JWKS', async () => {
    const clock = new FakeClock();
    const { keys } = await taskKeysFixture({ now: clock.now });
    const oldKid = keys.activeKid;
    const old = await issueWith(keys, clock);
    const newKid = await keys.rotate({ retireAfterMs: 15 * MINUTE });
    expect(newKid).not.toBe(oldKid);
    expect(keys.activeKid).toBe(newKid);
    const fresh = await issueWith(keys, clock);
    expect(kidOf(fresh.token)).toBe(newKid);
    expect(kidOf(old.token)).toBe(oldKid);
    expect((await verifyWith(keys, old.token, clock)).jti).toBe(old.claims.jti);
    expect((await verifyWith(keys, fresh.token, clock)).jti).toBe(fresh.claims.jti);
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    // Downstream, with the JWKS served after the rotation, both verify too.
    const jwks = createLocalJWKSet(keys.jwks());
    for (const t of [old.token, fresh.token]) {
      await expect(
        jwtVerify(t, jwks, {
          issuer: ISSUER,
          audience: AUDIENCE,
          typ: TASK_TOKEN_TYP,
          currentDate: new Date(clock.ms),
        }),
      ).resolves.toBeTruthy();
    }
  });

  it('prunes a replaced key after retireAfterMs: gone from the JWKS, from verification and from storage', async () => {
    const clock = new FakeClock();
    const { keys, store, node } = await taskKeysFixture({ now: clock.now, minReloadIntervalMs: 0 });
    const oldKid = keys.activeKid;
    // A token that outlives the retirement (misconfiguration) shows the key really is gone.
    const old = await issueWith(keys, clock, 3600);
    await keys.rotate({ retireAfterMs: 15 * MINUTE });
    clock.advance(15 * MINUTE - 1);
    expect(keys.jwks().keys).toHaveLength(2);
    await expect(verifyWith(keys, old.token, clock)).resolves.toBeTruthy();
    expect(await keys.prune()).toBe(0);
    clock.advance(1);
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([keys.activeKid]);
    const error = await verifyWith(keys, old.token, clock).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskTokenInvalidError);
    expect((error as TaskTokenInvalidError).auditReason).toBe('unknown_kid');
    expect(await keys.prune()).toBe(1);
    expect(await store.list('sys', 'task-signing-key/')).toEqual(['task-signing-key/0000000002']);
    expect(await keys.prune()).toBe(0);
    // A node starting now knows only the live key.
    const later = await node({ now: clock.now });
    expect(later.keys.jwks().keys.map((k) => k.kid)).not.toContain(oldKid);
  });

  it('prunes only from the oldest key up, so each stored key keeps the successor that dates its retirement', async () => {
    const clock = new FakeClock();
    const { keys, store } = await taskKeysFixture({ now: clock.now });
    await keys.rotate({ retireAfterMs: 60 * MINUTE }); // gen 1 retires at t+60m
    clock.advance(MINUTE);
    await keys.rotate({ retireAfterMs: MINUTE }); // gen 2 retires at t+2m
    clock.advance(5 * MINUTE);
    expect(keys.jwks().keys).toHaveLength(2); // gen 2 is retired, gen 1 is not
    expect(await keys.prune()).toBe(0);
    expect((await store.list('sys', 'task-signing-key/')).length).toBe(3);
    clock.advance(60 * MINUTE);
    expect(await keys.prune()).toBe(2);
    expect(await store.list('sys', 'task-signing-key/')).toEqual(['task-signing-key/0000000003']);
  });

  it('pre-publishes a key: in the JWKS at once, signing only after activateAfterMs', async () => {
    const clock = new FakeClock();
    const { keys } = await taskKeysFixture({ now: clock.now });
    const oldKid = keys.activeKid;
    const newKid = await keys.rotate({ retireAfterMs: 15 * MINUTE, activateAfterMs: 5 * MINUTE });
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    expect(keys.activeKid).toBe(oldKid);
    clock.advance(5 * MINUTE);
    expect(keys.activeKid).toBe(newKid);
    clock.advance(15 * MINUTE);
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([newKid]);
  });

  it('refuses a rotation with a non-positive retirement or negative activation delay', async () => {
    const { keys } = await taskKeysFixture();
    for (const options of [
      { retireAfterMs: 0 },
      { retireAfterMs: -1 },
      { retireAfterMs: 1.5 },
      { retireAfterMs: 1, activateAfterMs: -1 },
    ]) {
      await expect(keys.rotate(options)).rejects.toMatchObject({ code: 'CUSTOS_ERR_INVALID_TTL' });
    }
  });

  it('multi-node: a token node A signs after rotating verifies on node B, which reloads once for the new kid', async () => {
    const clock = new FakeClock();
    const store = countingStore(new MemoryEntryStore());
    const { keys: a, node } = await taskKeysFixture({ now: clock.now, minReloadIntervalMs: 0 }, store);
    const { keys: b } = await node();
    const before = b.activeKid;
    const newKid = await a.rotate({ retireAfterMs: 15 * MINUTE });
    const { token, claims } = await issueWith(a, clock);
    expect(kidOf(token)).toBe(newKid);
    const scans = store.scans;
    expect((await verifyWith(b, token, clock)).jti).toBe(claims.jti);
    expect(store.scans).toBe(scans + 1);
    await verifyWith(b, token, clock);
    expect(store.scans).toBe(scans + 1); // known now: no more I/O
    expect(b.jwks().keys.map((k) => k.kid)).toEqual([newKid, before]);
  });

  it('multi-node: a node re-reads the key set before signing once its view is older than the refresh interval', async () => {
    const clock = new FakeClock();
    const { keys: a, node } = await taskKeysFixture({ now: clock.now, refreshIntervalMs: 30_000 });
    const { keys: b } = await node();
    const newKid = await a.rotate({ retireAfterMs: 15 * MINUTE });
    expect(kidOf((await issueWith(b, clock)).token)).not.toBe(newKid);
    clock.advance(30_000);
    expect(kidOf((await issueWith(b, clock)).token)).toBe(newKid);
  });

  it('multi-node: concurrent rotations make one new key that both nodes adopt', async () => {
    const store = new MemoryEntryStore();
    const { keys: a, node } = await taskKeysFixture({}, store);
    const { keys: b } = await node();
    const [ka, kb] = await Promise.all([a.rotate({ retireAfterMs: MINUTE }), b.rotate({ retireAfterMs: MINUTE })]);
    const stored = await store.list('sys', 'task-signing-key/');
    // Either both raced for generation 2 (one key), or one ran after the other (two rotations);
    // in every case the nodes end on the same active key.
    if (ka === kb) expect(stored).toHaveLength(2);
    else expect(stored).toHaveLength(3);
    await a.reload();
    await b.reload();
    expect(a.activeKid).toBe(b.activeKid);
  });

  it('unknown kids cost at most one storage scan per interval, however many arrive', async () => {
    const store = countingStore(new MemoryEntryStore());
    const { keys } = await taskKeysFixture({ minReloadIntervalMs: 200 }, store);
    const scans = store.scans;
    const header = encodeTaskTokenHeader('A'.repeat(43));
    const junk = `${header}.${Buffer.from('{}').toString('base64url')}.${'A'.repeat(86)}`;
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        verifyTaskToken(junk, { keys, issuer: ISSUER, audience: AUDIENCE }).catch((e: unknown) => e),
      ),
    );
    for (const e of results) expect((e as TaskTokenInvalidError).auditReason).toBe('unknown_kid');
    expect(store.scans - scans).toBe(1);
  });

  it('forget() drops the keys: nothing signs or verifies afterwards', async () => {
    const clock = new FakeClock();
    const { keys } = await taskKeysFixture({ now: clock.now });
    const { token } = await issueWith(keys, clock);
    keys.forget();
    await expect(issueWith(keys, clock)).rejects.toBeInstanceOf(SealedError);
    await expect(verifyWith(keys, token, clock)).rejects.toBeInstanceOf(SealedError);
    expect(() => keys.jwks()).toThrow(SealedError);
  });

  it('cannot load through a sealed barrier', async () => {
    const store = new MemoryEntryStore();
    await expect(TaskSigningKeys.load(store, new Barrier(store))).rejects.toBeInstanceOf(SealedError);
  });

  it('refuses a stored key under a foreign storage key or with a mismatched generation', async () => {
    const store = new MemoryEntryStore();
    const { barrier, node } = await taskKeysFixture({}, store);
    await store.put('sys', 'task-signing-key/junk', barrier.encrypt('sys\0task-signing-key/junk', new Uint8Array(8)));
    await expect(node()).rejects.toBeInstanceOf(IntegrityError);
    await store.delete('sys', 'task-signing-key/junk');
    // A valid record of generation 1 copied (re-encrypted) into slot 2.
    const one = await store.get('sys', 'task-signing-key/0000000001');
    const plain = barrier.decrypt('sys\0task-signing-key/0000000001', one!.value);
    await store.put('sys', 'task-signing-key/0000000002', barrier.encrypt('sys\0task-signing-key/0000000002', plain));
    await expect(node()).rejects.toBeInstanceOf(IntegrityError);
    // A blob moved between rows fails the barrier's AAD check.
    await store.put('sys', 'task-signing-key/0000000002', one!.value);
    await expect(node()).rejects.toBeInstanceOf(CustosError);
  });
});

describe('signing key records', () => {
  it('round-trip and refuse malformed bytes', () => {
    const record = {
      generation: 7,
      createdAt: 1,
      activateAt: 2,
      predecessorRetireAfterMs: 3,
      pkcs8: Uint8Array.from([1, 2, 3]),
    };
    const bytes = encodeSigningKeyRecord(record);
    const back = decodeSigningKeyRecord(bytes);
    expect({ ...back, pkcs8: [...back.pkcs8] }).toEqual({ ...record, pkcs8: [1, 2, 3] });
    for (const bad of [
      new Uint8Array(0),
      Uint8Array.from([2, 0, 0]),
      Uint8Array.from([1, 0xff, 0xff]),
      Uint8Array.from([1, 0, 1, 0x7b]),
    ]) {
      expect(() => decodeSigningKeyRecord(bad)).toThrow(IntegrityError);
    }
    // Metadata with a mistyped field.
    const meta = Buffer.from(
      JSON.stringify({ generation: '7', createdAt: 1, activateAt: 2, predecessorRetireAfterMs: null }),
    );
    const mistyped = Buffer.concat([Buffer.from([1, 0, meta.length]), meta]);
    expect(() => decodeSigningKeyRecord(mistyped)).toThrow(IntegrityError);
    expect(() => decodeSigningKeyRecord(Buffer.from(JSON.stringify({})))).toThrow(IntegrityError);
  });
});
