import { describe, expect, it } from 'vitest';
import { SealWatch } from './seal-watch.js';

/** A root of trust that can be switched off and on, and a node that records what the watch did. */
function rig() {
  const state = { up: true, unsealed: true, log: [] as string[] };
  const watch = new SealWatch({
    intervalMs: 60_000,
    isUnsealed: () => state.unsealed,
    check: async () => {
      if (!state.up) throw new Error('gone');
    },
    lost: async () => {
      state.log.push('lost');
      state.unsealed = false;
    },
    recover: async () => {
      if (!state.up) throw new Error('still gone');
      state.unsealed = true;
    },
    restored: async () => {
      state.log.push('restored');
    },
  });
  return { state, watch };
}

describe('SealWatch', () => {
  it('seals once when the root of trust goes away, retries while it is gone, unseals once when it is back', async () => {
    const { state, watch } = rig();
    await watch.tick();
    expect(state.log).toEqual([]);
    state.up = false;
    await watch.tick();
    expect(state.log).toEqual(['lost']);
    expect(watch.fault).toBeInstanceOf(Error);
    await watch.tick();
    await watch.tick();
    expect(state.log).toEqual(['lost']);
    expect(state.unsealed).toBe(false);
    state.up = true;
    await watch.tick();
    expect(state.log).toEqual(['lost', 'restored']);
    expect(state.unsealed).toBe(true);
    expect(watch.fault).toBeUndefined();
  });

  it('never unseals a node it did not seal (an operator sealed it, or it was never unsealed)', async () => {
    const { state, watch } = rig();
    state.unsealed = false;
    state.up = false;
    await watch.tick();
    state.up = true;
    await watch.tick();
    expect(state.log).toEqual([]);
    expect(state.unsealed).toBe(false);

    // Lost, then an operator seals: the watch forgets, and a healthy root of trust changes nothing.
    state.unsealed = true;
    state.up = false;
    await watch.tick();
    watch.forget();
    state.up = true;
    await watch.tick();
    expect(state.log).toEqual(['lost']);
    expect(state.unsealed).toBe(false);
  });

  it('overlapping ticks share one check', async () => {
    const { state, watch } = rig();
    state.up = false;
    await Promise.all([watch.tick(), watch.tick(), watch.tick()]);
    expect(state.log).toEqual(['lost']);
  });
});
