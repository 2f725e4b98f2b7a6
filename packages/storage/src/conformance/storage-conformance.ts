import { randomBytes } from 'node:crypto';
import { type AuditCheckpoint, AuditConflictError, type AuditRecord, type Storage, StorageError } from '@custos/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compareUtf8 } from '../shared/key-range.js';

/** One adapter under test: a fresh, unmigrated storage and how to clean up after it. */
export interface ConformanceTarget {
  readonly storage: Storage;
  /** Called after the storage is closed. */
  cleanup(): Promise<void>;
}

const ns = 'kv.meta';
const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const utf8Sort = (keys: string[]): string[] => [...keys].sort(compareUtf8);

function record(seq: number, ts = `2026-01-01T00:00:${String(seq % 60).padStart(2, '0')}.000Z`): AuditRecord {
  const hex = (n: number): string => n.toString(16).padStart(64, '0');
  return { seq, ts, prevHash: hex(seq - 1), hash: hex(seq), event: JSON.stringify({ seq, action: 'read' }) };
}
const records = (from: number, to: number): AuditRecord[] =>
  Array.from({ length: to - from + 1 }, (_, i) => record(from + i));

async function putAll(storage: Storage, keys: string[], namespace = ns): Promise<void> {
  await storage.transaction(async (tx) => {
    for (const k of keys) await tx.entries.put(namespace, k, bytes(1));
  });
}

/**
 * The behaviour every storage adapter must show (openbao's ExerciseBackend,
 * for custos). Registers a vitest `describe` block; each test gets a fresh,
 * migrated storage from `open`.
 *
 * @example
 * runStorageConformance('sqlite :memory:', async () => ({
 *   storage: new SqliteStorage({ path: ':memory:' }),
 *   cleanup: async () => {},
 * }));
 */
export function runStorageConformance(name: string, open: () => Promise<ConformanceTarget>): void {
  describe(`storage conformance: ${name}`, () => {
    let target: ConformanceTarget;
    let s: Storage;

    beforeEach(async () => {
      target = await open();
      s = target.storage;
      await s.migrate();
    });
    afterEach(async () => {
      await s.close();
      await target.cleanup();
    });

    describe('entries', () => {
      it('gets what was put, with its expiry, and nothing for a missing key', async () => {
        expect(await s.entries.get(ns, 'a')).toBeUndefined();
        await s.entries.put(ns, 'a', bytes(1, 2, 3));
        await s.entries.put(ns, 'b', bytes(4), { expiresAt: 1_700_000_000_123 });
        expect(await s.entries.get(ns, 'a')).toEqual({ key: 'a', value: bytes(1, 2, 3), expiresAt: null });
        const b = await s.entries.get(ns, 'b');
        expect(b?.expiresAt).toBe(1_700_000_000_123);
        expect(b?.value).toBeInstanceOf(Uint8Array);
      });

      it('put replaces value and expiry', async () => {
        await s.entries.put(ns, 'a', bytes(1), { expiresAt: 5 });
        await s.entries.put(ns, 'a', bytes(2));
        expect(await s.entries.get(ns, 'a')).toEqual({ key: 'a', value: bytes(2), expiresAt: null });
        await s.entries.put(ns, 'a', bytes(3), { expiresAt: 7 });
        expect((await s.entries.get(ns, 'a'))?.expiresAt).toBe(7);
      });

      it('putIfAbsent writes only when absent', async () => {
        expect(await s.entries.putIfAbsent(ns, 'a', bytes(1), { expiresAt: 9 })).toBe(true);
        expect(await s.entries.putIfAbsent(ns, 'a', bytes(2))).toBe(false);
        expect(await s.entries.get(ns, 'a')).toEqual({ key: 'a', value: bytes(1), expiresAt: 9 });
      });

      it('putIfAbsent is atomic under concurrency: exactly one of many wins', async () => {
        const results = await Promise.all(
          Array.from({ length: 25 }, (_, i) => s.entries.putIfAbsent(ns, 'once', bytes(i))),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results.indexOf(true);
        expect((await s.entries.get(ns, 'once'))?.value).toEqual(bytes(winner));
      });

      it('delete reports whether something was deleted', async () => {
        await s.entries.put(ns, 'a', bytes(1));
        expect(await s.entries.delete(ns, 'a')).toBe(true);
        expect(await s.entries.delete(ns, 'a')).toBe(false);
        expect(await s.entries.get(ns, 'a')).toBeUndefined();
      });

      it('keeps namespaces apart', async () => {
        await s.entries.put('policy', 'k', bytes(1), { expiresAt: 1 });
        await s.entries.put('token', 'k', bytes(2), { expiresAt: 1 });
        await s.entries.put('token', 'k2', bytes(3));
        expect((await s.entries.get('policy', 'k'))?.value).toEqual(bytes(1));
        expect((await s.entries.get('token', 'k'))?.value).toEqual(bytes(2));
        expect(await s.entries.list('policy', '')).toEqual(['k']);
        expect(await s.entries.listExpired('policy', 10, 10)).toEqual(['k']);
        expect(await s.entries.delete('policy', 'k')).toBe(true);
        expect((await s.entries.get('token', 'k'))?.value).toEqual(bytes(2));
        expect(await s.entries.get('kv.meta', 'k')).toBeUndefined();
      });

      it('round-trips binary values exactly', async () => {
        const all = Uint8Array.from({ length: 256 }, (_, i) => i);
        const big = new Uint8Array(randomBytes(1024 * 1024));
        const cases: Record<string, Uint8Array> = {
          empty: new Uint8Array(0),
          zeros: new Uint8Array(64),
          zero: bytes(0),
          all,
          big,
          // A view into a larger buffer: only the view's bytes may be stored.
          view: new Uint8Array([9, 9, 1, 2, 3, 9]).subarray(2, 5),
        };
        for (const [k, v] of Object.entries(cases)) await s.entries.put(ns, k, v);
        for (const [k, v] of Object.entries(cases)) {
          const got = await s.entries.get(ns, k);
          expect(got?.value.byteLength, k).toBe(v.byteLength);
          expect(Buffer.from(got!.value).equals(Buffer.from(v)), k).toBe(true);
        }
        const scanned = await s.entries.scan(ns, 'vi');
        expect(scanned.map((e) => [...e.value])).toEqual([[1, 2, 3]]);
      });

      it('refuses keys with NUL or lone surrogates, and fractional expiries', async () => {
        for (const bad of ['a\0b', 'a\uD800', '\uDC00x']) {
          await expect(s.entries.put(ns, bad, bytes(1))).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
          await expect(s.entries.get(ns, bad)).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
          await expect(s.entries.list(ns, bad)).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
        }
        await expect(s.entries.put(ns, 'k', bytes(1), { expiresAt: 1.5 })).rejects.toMatchObject({
          code: 'CUSTOS_ERR_VALIDATION',
        });
        // A well-formed astral character (a surrogate pair) is fine.
        await s.entries.put(ns, 'emoji-\u{1F600}', bytes(1));
        expect(await s.entries.list(ns, 'emoji-')).toEqual(['emoji-\u{1F600}']);
      });
    });

    describe('list and scan', () => {
      const mixed = ['b', 'a', 'a/b', 'a/', 'A', 'é', 'z', '\u{1F600}', '\uFFFD', 'ab', ''];

      it('lists keys ascending by UTF-8 bytes; an empty prefix lists everything', async () => {
        await putAll(s, mixed);
        // UTF-16 order would put U+1F600 before U+FFFD; UTF-8 byte order puts it after.
        expect(await s.entries.list(ns, '')).toEqual(utf8Sort(mixed));
        expect(utf8Sort(mixed).indexOf('\uFFFD')).toBeLessThan(utf8Sort(mixed).indexOf('\u{1F600}'));
      });

      it('matches prefixes exactly, including keys that are prefixes of others', async () => {
        await putAll(s, ['kv/a', 'kv/ab', 'kv/a/b', 'kv/b', 'kv', 'kv0', 'kw']);
        expect(await s.entries.list(ns, 'kv/a')).toEqual(['kv/a', 'kv/a/b', 'kv/ab']);
        expect(await s.entries.list(ns, 'kv/a/')).toEqual(['kv/a/b']);
        expect(await s.entries.list(ns, 'kv/')).toEqual(['kv/a', 'kv/a/b', 'kv/ab', 'kv/b']);
        expect(await s.entries.list(ns, 'kv')).toEqual(['kv', 'kv/a', 'kv/a/b', 'kv/ab', 'kv/b', 'kv0']);
        expect(await s.entries.list(ns, 'kv/c')).toEqual([]);
      });

      it('treats % and _ (LIKE wildcards) and backslash as plain characters', async () => {
        await putAll(s, ['x%y', 'x_y', 'xay', 'x\\y', 'x%', 'xzz']);
        expect(await s.entries.list(ns, 'x%')).toEqual(['x%', 'x%y']);
        expect(await s.entries.list(ns, 'x_')).toEqual(['x_y']);
        expect(await s.entries.list(ns, 'x\\')).toEqual(['x\\y']);
      });

      it('handles unicode prefixes, including the highest code points', async () => {
        const keys = [
          'é',
          'éa',
          'ê',
          'a\u{10FFFF}',
          'a\u{10FFFF}b',
          'a\u{10FFFF}\u{10FFFF}',
          'b',
          '\u{D7FF}x',
          '\u{E000}',
          '\u{1F600}/k',
          '\u{1F601}',
        ];
        await putAll(s, keys);
        expect(await s.entries.list(ns, 'é')).toEqual(['é', 'éa']);
        expect(await s.entries.list(ns, 'a\u{10FFFF}')).toEqual([
          'a\u{10FFFF}',
          'a\u{10FFFF}b',
          'a\u{10FFFF}\u{10FFFF}',
        ]);
        expect(await s.entries.list(ns, '\u{D7FF}')).toEqual(['\u{D7FF}x']);
        expect(await s.entries.list(ns, '\u{1F600}')).toEqual(['\u{1F600}/k']);
      });

      it('paginates with after and limit', async () => {
        const keys = Array.from({ length: 25 }, (_, i) => `p/${String(i).padStart(2, '0')}`);
        await putAll(s, [...keys, 'o', 'q']);
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await s.entries.list(ns, 'p/', { after, limit: 10 });
          seen.push(...page);
          if (page.length < 10) break;
          after = page.at(-1);
        }
        expect(seen).toEqual(keys);
        expect(await s.entries.list(ns, 'p/', { after: 'a', limit: 2 })).toEqual(['p/00', 'p/01']);
        expect(await s.entries.list(ns, 'p/', { after: 'p/24' })).toEqual([]);
        expect(await s.entries.list(ns, 'p/', { after: 'z' })).toEqual([]);
        expect(await s.entries.list(ns, 'p/', { limit: 0 })).toEqual([]);
        expect(await s.entries.list(ns, '', { after: 'p/23' })).toEqual(['p/24', 'q']);
      });

      it('scans entries with values and expiries, paginated the same way', async () => {
        await s.entries.put(ns, 's/1', bytes(1), { expiresAt: 10 });
        await s.entries.put(ns, 's/2', bytes(2));
        await s.entries.put(ns, 's/3', bytes(3));
        await s.entries.put(ns, 't', bytes(4));
        expect(await s.entries.scan(ns, 's/', { limit: 2 })).toEqual([
          { key: 's/1', value: bytes(1), expiresAt: 10 },
          { key: 's/2', value: bytes(2), expiresAt: null },
        ]);
        expect(await s.entries.scan(ns, 's/', { after: 's/2' })).toEqual([
          { key: 's/3', value: bytes(3), expiresAt: null },
        ]);
      });

      it('caps a page at 10,000 keys', async () => {
        await s.transaction(async (tx) => {
          for (let i = 0; i < 10_001; i++) await tx.entries.put(ns, `c/${i}`, bytes());
        });
        expect(await s.entries.list(ns, 'c/')).toHaveLength(10_000);
        expect(await s.entries.list(ns, 'c/', { limit: 1_000_000 })).toHaveLength(10_000);
      });
    });

    describe('listExpired', () => {
      it('lists keys expired at `now`, oldest expiry first, limited, per namespace', async () => {
        await s.entries.put(ns, 'late', bytes(1), { expiresAt: 300 });
        await s.entries.put(ns, 'early', bytes(1), { expiresAt: 100 });
        await s.entries.put(ns, 'mid-b', bytes(1), { expiresAt: 200 });
        await s.entries.put(ns, 'mid-a', bytes(1), { expiresAt: 200 });
        await s.entries.put(ns, 'never', bytes(1));
        await s.entries.put('other', 'x', bytes(1), { expiresAt: 1 });
        expect(await s.entries.listExpired(ns, 200, 10)).toEqual(['early', 'mid-a', 'mid-b']);
        expect(await s.entries.listExpired(ns, 200, 2)).toEqual(['early', 'mid-a']);
        expect(await s.entries.listExpired(ns, 99, 10)).toEqual([]);
        expect(await s.entries.listExpired(ns, Number.MAX_SAFE_INTEGER, 10)).toEqual([
          'early',
          'mid-a',
          'mid-b',
          'late',
        ]);
        await s.entries.put(ns, 'early', bytes(1));
        expect(await s.entries.listExpired(ns, 200, 10)).toEqual(['mid-a', 'mid-b']);
      });
    });

    describe('transactions', () => {
      it('commits all writes and returns fn’s result', async () => {
        const result = await s.transaction(async (tx) => {
          await tx.entries.put(ns, 'a', bytes(1));
          await tx.entries.put(ns, 'b', bytes(2));
          await tx.audit.append([record(1)]);
          return 42;
        });
        expect(result).toBe(42);
        expect(await s.entries.list(ns, '')).toEqual(['a', 'b']);
        expect((await s.audit.head())?.seq).toBe(1);
      });

      it('rolls back everything when fn throws, and rethrows the same error', async () => {
        await s.entries.put(ns, 'keep', bytes(1));
        const boom = new Error('boom');
        await expect(
          s.transaction(async (tx) => {
            await tx.entries.put(ns, 'new', bytes(1));
            await tx.entries.put(ns, 'keep', bytes(2));
            await tx.entries.delete(ns, 'keep');
            await tx.audit.append([record(1)]);
            await tx.audit.appendCheckpoint({ version: 1, seq: 1, hash: 'h', ts: 't', keyId: 'k', signature: 's' });
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(await s.entries.list(ns, '')).toEqual(['keep']);
        expect((await s.entries.get(ns, 'keep'))?.value).toEqual(bytes(1));
        expect(await s.audit.head()).toBeUndefined();
        expect(await s.audit.checkpoints()).toEqual([]);
      });

      it('lets fn use its tx stores freely: its own writes, helpers, parallel calls', async () => {
        const helper = async (tx: Parameters<Parameters<Storage['transaction']>[0]>[0], k: string) => {
          await tx.entries.put(ns, k, bytes(k.length));
          return tx.entries.get(ns, k);
        };
        await s.transaction(async (tx) => {
          const [a, b] = await Promise.all([helper(tx, 'a'), helper(tx, 'bb'), tx.audit.append(records(1, 2))]);
          expect(a?.value).toEqual(bytes(1));
          expect(b?.value).toEqual(bytes(2));
          expect(await tx.entries.list(ns, '')).toEqual(['a', 'bb']);
          expect(await tx.entries.putIfAbsent(ns, 'a', bytes(9))).toBe(false);
          expect(await tx.entries.delete(ns, 'bb')).toBe(true);
          expect((await tx.audit.head())?.seq).toBe(2);
          await tx.audit.append([record(3)]);
          expect((await tx.audit.range(1, 10)).map((r) => r.seq)).toEqual([1, 2, 3]);
        });
        expect(await s.entries.list(ns, '')).toEqual(['a']);
        expect((await s.audit.head())?.seq).toBe(3);
      });

      it('refuses a tx store used after its transaction finished', async () => {
        let leaked: Parameters<Parameters<Storage['transaction']>[0]>[0] | undefined;
        await s.transaction(async (tx) => {
          leaked = tx;
        });
        await expect(leaked!.entries.put(ns, 'late', bytes(1))).rejects.toThrow(/finished/);
        expect(await s.entries.get(ns, 'late')).toBeUndefined();
      });

      it('serialises 200 concurrent read-modify-write transactions on one counter', async () => {
        await s.entries.put(ns, 'counter', bytes(0, 0));
        await Promise.all(
          Array.from({ length: 200 }, () =>
            s.transaction(async (tx) => {
              const cur = (await tx.entries.get(ns, 'counter'))!.value;
              const n = Buffer.from(cur).readUInt16BE(0) + 1;
              await tx.entries.put(ns, 'counter', bytes(n >> 8, n & 0xff));
            }),
          ),
        );
        expect(Buffer.from((await s.entries.get(ns, 'counter'))!.value).readUInt16BE(0)).toBe(200);
      });

      it('keeps many concurrent puts and transactions apart', async () => {
        await Promise.all([
          ...Array.from({ length: 300 }, (_, i) => s.entries.put(ns, `solo/${i}`, bytes(i & 0xff))),
          ...Array.from({ length: 30 }, (_, t) =>
            s
              .transaction(async (tx) => {
                for (let i = 0; i < 10; i++) await tx.entries.put(ns, `tx/${t}/${i}`, bytes(t));
                if (t % 3 === 0) throw new Error('abort');
              })
              .catch(() => undefined),
          ),
        ]);
        expect(await s.entries.list(ns, 'solo/')).toHaveLength(300);
        // 30 transactions, every third aborted: 20 committed × 10 keys.
        expect(await s.entries.list(ns, 'tx/')).toHaveLength(200);
        expect(await s.entries.list(ns, 'tx/3/')).toEqual([]);
      });

      it('commits a batch of 1,000 puts', async () => {
        await s.transaction(async (tx) => {
          for (let i = 0; i < 1000; i++) await tx.entries.put(ns, `batch/${i}`, bytes(1, 2, 3));
        });
        expect(await s.entries.list(ns, 'batch/')).toHaveLength(1000);
      });
    });

    describe('audit', () => {
      it('starts empty', async () => {
        expect(await s.audit.head()).toBeUndefined();
        expect(await s.audit.range(1, 10)).toEqual([]);
        expect(await s.audit.firstSeqSince('2000-01-01T00:00:00.000Z')).toBeUndefined();
        expect(await s.audit.checkpoints()).toEqual([]);
      });

      it('appends contiguous batches and reads them back exactly', async () => {
        const weird = {
          ...record(4),
          event: JSON.stringify({ note: 'quote " backslash \\ brace { } comma , newline \n é \u{1F600} NULL' }),
        };
        await s.audit.append(records(1, 3));
        await s.audit.append([weird, record(5)]);
        await s.audit.append([]);
        expect(await s.audit.head()).toEqual(record(5));
        expect(await s.audit.range(1, 100)).toEqual([...records(1, 3), weird, record(5)]);
        expect(await s.audit.range(3, 2)).toEqual([record(3), weird]);
        expect(await s.audit.range(6, 10)).toEqual([]);
      });

      it('refuses a batch that does not continue the head, writing none of it', async () => {
        await s.audit.append(records(1, 2));
        // A gap after the head means a stale view of the chain: a conflict.
        await expect(s.audit.append([record(4)])).rejects.toBeInstanceOf(AuditConflictError);
        // Overlapping the head: another writer took those seqs.
        await expect(s.audit.append(records(2, 4))).rejects.toBeInstanceOf(AuditConflictError);
        await expect(s.audit.append([record(1)])).rejects.toBeInstanceOf(AuditConflictError);
        expect((await s.audit.range(1, 10)).map((r) => r.seq)).toEqual([1, 2]);
      });

      it('refuses a batch with a gap inside it or a seq below 1', async () => {
        await expect(s.audit.append([record(1), record(3)])).rejects.toBeInstanceOf(RangeError);
        await expect(s.audit.append([record(0)])).rejects.toBeInstanceOf(RangeError);
        expect(await s.audit.head()).toBeUndefined();
      });

      it('lets exactly one of two racing appenders of the same seq win', async () => {
        await s.audit.append(records(1, 1));
        const a = { ...record(2), event: '{"by":"a"}' };
        const b = { ...record(2), event: '{"by":"b"}' };
        const results = await Promise.allSettled([s.audit.append([a, record(3)]), s.audit.append([b])]);
        const ok = results.filter((r) => r.status === 'fulfilled');
        expect(ok).toHaveLength(1);
        const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        expect(failed.reason).toBeInstanceOf(AuditConflictError);
        const aWon = results[0]!.status === 'fulfilled';
        expect((await s.audit.head())?.seq).toBe(aWon ? 3 : 2);
        expect((await s.audit.range(2, 1))[0]?.event).toBe(aWon ? a.event : b.event);
      });

      it('keeps a transaction usable after an append conflict inside it', async () => {
        await s.audit.append(records(1, 2));
        await s.transaction(async (tx) => {
          await expect(tx.audit.append(records(2, 3))).rejects.toBeInstanceOf(AuditConflictError);
          await tx.audit.append(records(3, 3));
          await tx.entries.put(ns, 'after-conflict', bytes(1));
        });
        expect((await s.audit.head())?.seq).toBe(3);
        expect(await s.entries.get(ns, 'after-conflict')).toBeDefined();
      });

      it('finds the first seq at or after a time', async () => {
        const at = (seq: number, second: number) =>
          record(seq, `2026-03-01T10:00:${String(second).padStart(2, '0')}.000Z`);
        await s.audit.append([at(1, 0), at(2, 10), at(3, 10), at(4, 20)]);
        expect(await s.audit.firstSeqSince('2026-03-01T09:00:00.000Z')).toBe(1);
        expect(await s.audit.firstSeqSince('2026-03-01T10:00:10.000Z')).toBe(2);
        expect(await s.audit.firstSeqSince('2026-03-01T10:00:11.000Z')).toBe(4);
        expect(await s.audit.firstSeqSince('2026-03-01T10:00:21.000Z')).toBeUndefined();
      });

      it('stores legacy (v1) checkpoints, returns them ascending, refuses a duplicate seq', async () => {
        const cp = (seq: number): AuditCheckpoint => ({
          version: 1,
          seq,
          hash: record(seq).hash,
          ts: record(seq).ts,
          keyId: 'audit-key-1',
          signature: `sig-${seq}`,
        });
        await s.audit.appendCheckpoint(cp(20));
        await s.audit.appendCheckpoint(cp(10));
        expect(await s.audit.checkpoints()).toEqual([cp(10), cp(20)]);
        await expect(s.audit.appendCheckpoint({ ...cp(10), signature: 'other' })).rejects.toBeInstanceOf(
          AuditConflictError,
        );
        expect(await s.audit.checkpoints()).toEqual([cp(10), cp(20)]);
        expect(await s.audit.lastCheckpoint()).toEqual(cp(20));
      });

      describe('chained (v2) checkpoints', () => {
        const cp = (seq: number, prevSeq: number, by = 'a'): AuditCheckpoint => ({
          version: 2,
          seq,
          hash: record(seq).hash,
          ts: record(seq).ts,
          keyId: 'audit-key-1',
          signature: `sig-${seq}-${by}`,
          prevSeq,
          prevDigest: `${prevSeq}`.padStart(64, '0'),
          every: 1000,
          intervalMs: 10_000,
        });

        it('stores a chain and reads it back exactly, in full, from a seq and its last', async () => {
          expect(await s.audit.lastCheckpoint()).toBeUndefined();
          await s.audit.appendCheckpoint(cp(10, 0));
          await s.audit.appendCheckpoint(cp(20, 10));
          await s.audit.appendCheckpoint(cp(25, 20));
          expect(await s.audit.checkpoints()).toEqual([cp(10, 0), cp(20, 10), cp(25, 20)]);
          expect(await s.audit.checkpointsFrom(11, 10)).toEqual([cp(20, 10), cp(25, 20)]);
          expect(await s.audit.checkpointsFrom(10, 1)).toEqual([cp(10, 0)]);
          expect(await s.audit.checkpointsFrom(26, 10)).toEqual([]);
          expect(await s.audit.lastCheckpoint()).toEqual(cp(25, 20));
        });

        it('follows legacy checkpoints: the first v2 names the last v1', async () => {
          const legacy: AuditCheckpoint = { version: 1, seq: 5, hash: 'h', ts: 't', keyId: 'k', signature: 's' };
          await s.audit.appendCheckpoint(legacy);
          await expect(s.audit.appendCheckpoint(cp(10, 0))).rejects.toBeInstanceOf(AuditConflictError);
          await s.audit.appendCheckpoint(cp(10, 5));
          expect(await s.audit.checkpoints()).toEqual([legacy, cp(10, 5)]);
        });

        it('refuses a checkpoint that does not name the last one stored, writing nothing', async () => {
          await s.audit.appendCheckpoint(cp(10, 0));
          await s.audit.appendCheckpoint(cp(20, 10));
          // Names a predecessor that is not the last: a stale view (or a forked chain).
          await expect(s.audit.appendCheckpoint(cp(30, 10))).rejects.toBeInstanceOf(AuditConflictError);
          await expect(s.audit.appendCheckpoint(cp(30, 0))).rejects.toBeInstanceOf(AuditConflictError);
          // Names a predecessor that does not exist.
          await expect(s.audit.appendCheckpoint(cp(30, 25))).rejects.toBeInstanceOf(AuditConflictError);
          expect((await s.audit.checkpoints()).map((c) => c.seq)).toEqual([10, 20]);
        });

        it('lets exactly one of two racing nodes chain a checkpoint to the same predecessor', async () => {
          await s.audit.appendCheckpoint(cp(10, 0));
          for (let round = 0; round < 5; round++) {
            const last = (await s.audit.lastCheckpoint())!.seq;
            const results = await Promise.allSettled([
              s.audit.appendCheckpoint(cp(last + 5, last, 'a')),
              s.audit.appendCheckpoint(cp(last + 7, last, 'b')),
            ]);
            expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
            const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
            expect(failed.reason).toBeInstanceOf(AuditConflictError);
          }
          const chain = await s.audit.checkpoints();
          expect(chain).toHaveLength(6);
          for (const [i, c] of chain.slice(1).entries()) expect(c.version === 2 && c.prevSeq).toBe(chain[i]!.seq);
        });

        it('keeps a transaction usable after a checkpoint conflict inside it', async () => {
          await s.audit.appendCheckpoint(cp(10, 0));
          await s.transaction(async (tx) => {
            await expect(tx.audit.appendCheckpoint(cp(20, 0))).rejects.toBeInstanceOf(AuditConflictError);
            await tx.audit.appendCheckpoint(cp(20, 10));
            await tx.entries.put(ns, 'after-checkpoint-conflict', bytes(1));
          });
          expect((await s.audit.lastCheckpoint())?.seq).toBe(20);
          expect(await s.entries.get(ns, 'after-checkpoint-conflict')).toBeDefined();
        });
      });
    });

    describe('schema and errors', () => {
      it('migrate is idempotent and keeps data', async () => {
        await s.entries.put(ns, 'a', bytes(1));
        await s.migrate();
        await s.migrate();
        expect((await s.entries.get(ns, 'a'))?.value).toEqual(bytes(1));
      });

      it('wraps driver errors in StorageError, with the driver error as cause and no SQL in the message', async () => {
        // A second, unmigrated storage: its tables do not exist, so the driver fails.
        const other = await open();
        try {
          const err = await other.storage.entries.get(ns, 'secret-looking-key').catch((e: unknown) => e);
          expect(err).toBeInstanceOf(StorageError);
          expect((err as StorageError).code).toBe('CUSTOS_ERR_STORAGE');
          expect((err as StorageError).cause).toBeInstanceOf(Error);
          expect((err as Error).message).not.toMatch(/SELECT|entries|secret-looking-key/);
          await other.storage.close();
          // And after close.
          await expect(other.storage.audit.head()).rejects.toBeInstanceOf(StorageError);
        } finally {
          await other.storage.close().catch(() => undefined);
          await other.cleanup();
        }
      });
    });
  });
}
