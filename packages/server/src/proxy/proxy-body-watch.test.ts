import { randomBytes } from 'node:crypto';
import { Barrier, createAuditHmac, HoneytokenRegistry } from '@custos/core';
import { createStorage } from '@custos/storage';
import { afterAll, describe, expect, it } from 'vitest';
import { ProxyBodyWatch } from './proxy-body-watch.js';

// The body watch over a real registry (sealed entries in a real in-memory SQLite store).

describe('ProxyBodyWatch', async () => {
  const storage = createStorage('sqlite::memory:');
  await storage.migrate();
  const barrier = new Barrier(storage.entries);
  const binding = { keyringId: randomBytes(16).toString('hex'), context: 'body-watch-test' };
  const rootKey = randomBytes(32);
  await barrier.createKeyring(rootKey, binding);
  await barrier.unseal(Buffer.from(rootKey), binding);
  const hmac = createAuditHmac(randomBytes(32));
  const registry = new HoneytokenRegistry({ entries: storage.entries, cipher: barrier, hmac });
  const decoy = `sk-proj-${randomBytes(60).toString('base64url')}`;
  await registry.add({
    path: 'kv/x/decoy',
    kind: 'openai',
    created_time: new Date().toISOString(),
    created_by: 'test',
    fingerprints: [hmac(decoy)],
    lengths: [decoy.length],
  });

  afterAll(async () => {
    await storage.close();
  });

  it('finds a decoy split across chunks of a JSON body', () => {
    const body = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: `use key ${decoy} please` }] }));
    const at = body.indexOf(decoy.slice(0, 20)) + 10;
    const watch = new ProxyBodyWatch(registry);
    watch.write(body.subarray(0, at));
    expect(watch.found).toBeUndefined();
    watch.write(body.subarray(at));
    watch.end();
    expect(watch.found).toBe(hmac(decoy));
  });

  it('stays quiet on a body without one, and on a long run with no separator', () => {
    const watch = new ProxyBodyWatch(registry);
    watch.write(Buffer.from(`{"prompt": "${'a'.repeat(5_000)}", "key": "${decoy.slice(0, -1)}x"}`));
    watch.write(randomBytes(64 * 1024));
    watch.end();
    expect(watch.found).toBeUndefined();
  });
});
