import { describe, expect, it } from 'vitest';
import { MemoryEntryStore } from './memory-entry-store.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('MemoryEntryStore', () => {
  it('sorts keys by UTF-8 bytes, not UTF-16 code units', async () => {
    const store = new MemoryEntryStore();
    // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (F0 9F 98 80) in
    // bytes, but after it in UTF-16 code units (FF5E > D83D).
    for (const key of ['p/😀', 'p/～', 'p/b', 'p/a']) await store.put('ns', key, bytes(key));
    expect(await store.list('ns', 'p/')).toEqual(['p/a', 'p/b', 'p/～', 'p/😀']);
  });

  it('lists and scans by prefix with keyset pagination', async () => {
    const store = new MemoryEntryStore();
    for (const key of ['a/1', 'a/2', 'a/3', 'ab', 'b/1']) await store.put('ns', key, bytes(key));
    await store.put('other', 'a/9', bytes('x'));
    expect(await store.list('ns', 'a/')).toEqual(['a/1', 'a/2', 'a/3']);
    expect(await store.list('ns', 'a/', { limit: 2 })).toEqual(['a/1', 'a/2']);
    expect(await store.list('ns', 'a/', { after: 'a/2' })).toEqual(['a/3']);
    const rows = await store.scan('ns', 'a', { after: 'a/1', limit: 3 });
    expect(rows.map((r) => [r.key, new TextDecoder().decode(r.value)])).toEqual([
      ['a/2', 'a/2'],
      ['a/3', 'a/3'],
      ['ab', 'ab'],
    ]);
  });

  it('putIfAbsent is atomic under concurrency', async () => {
    const store = new MemoryEntryStore();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.putIfAbsent('ns', 'k', bytes(`${i}`))),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await store.putIfAbsent('ns', 'k', bytes('again'))).toBe(false);
  });

  it('copies values in and out, deletes, and lists expired keys oldest first', async () => {
    const store = new MemoryEntryStore();
    const value = bytes('abc');
    await store.put('ns', 'k', value, { expiresAt: 50 });
    value[0] = 0;
    const got = await store.get('ns', 'k');
    expect(got?.value[0]).toBe(0x61);
    got!.value[0] = 0;
    expect((await store.get('ns', 'k'))?.value[0]).toBe(0x61);
    await store.put('ns', 'j', bytes('x'), { expiresAt: 10 });
    await store.put('ns', 'l', bytes('x'));
    expect(await store.listExpired('ns', 60, 10)).toEqual(['j', 'k']);
    expect(await store.listExpired('ns', 20, 10)).toEqual(['j']);
    expect(await store.delete('ns', 'k')).toBe(true);
    expect(await store.delete('ns', 'k')).toBe(false);
    expect(await store.get('ns', 'k')).toBeUndefined();
  });
});
