import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { Barrier } from './barrier.js';

// A coarse guard against a hot-path regression (e.g. a key import or an
// allocation storm per call), not a benchmark: the bound is ~50x the figure
// measured on a 2-core CI machine, so it does not flake.
it('encrypt + decrypt of a 200-byte value stays well under 1 ms', async () => {
  const store = new MemoryEntryStore();
  const binding = { keyringId: randomBytes(16).toString('hex'), context: 'perf' };
  const rootKey = randomBytes(32);
  const barrier = new Barrier(store);
  await barrier.createKeyring(rootKey, binding);
  await barrier.unseal(rootKey, binding);
  const value = randomBytes(200);
  const aad = 'kv.version\0kv/app/db\u00001';
  const round = () => barrier.decrypt(aad, barrier.encrypt(aad, value));
  for (let i = 0; i < 2_000; i++) round();
  const n = 20_000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) round();
  const microsPerOp = Number(process.hrtime.bigint() - start) / 1_000 / n;
  if (process.env.CUSTOS_PRINT_PERF) console.log(`barrier encrypt+decrypt 200 B: ${microsPerOp.toFixed(2)} µs/op`);
  expect(microsPerOp).toBeLessThan(1_000);
});
