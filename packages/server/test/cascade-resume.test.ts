import { parseDuration } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './test-server.js';

describe('a revocation cut short by a crash', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('sqlite');
  });
  afterAll(async () => {
    await s?.close();
  });

  it('leaves no token of the tree usable, and the cascade is resumed later', async () => {
    const { tasks, roles, authenticator } = s.node.services();
    const role = await roles.write('crashy', { policies: [], max_ttl_ms: parseDuration('1h'), max_depth: 3 });
    const root = await tasks.start({ role, sub: 'test', via: 'operator', ttlMs: parseDuration('30m') });
    const subject = (token: string) => authenticator.verifyTaskToken(token, { method: 'GET', url: 'test' });
    const child = await tasks.delegate(await subject(root.token), {});
    const grandchild = await tasks.delegate(await subject(child.token), {});

    // The lease hook fails the first time, as if the process died mid-cascade.
    const told: Array<{ rootId: string; prefix: string }> = [];
    let failOnce = true;
    tasks.onTaskEnded(async (subtree) => {
      if (failOnce) {
        failOnce = false;
        throw new Error('simulated crash during the cascade');
      }
      told.push(subtree);
    });
    await expect(tasks.revoke(root.task.id, 'test')).rejects.toThrow('simulated crash');

    // The revocation itself was committed first: every token of the tree is refused.
    for (const token of [root.token, child.token, grandchild.token]) {
      await expect(subject(token)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
    }
    // On restart (runCascades runs at unseal), the recorded cascade completes.
    expect(await tasks.runCascades()).toBe(1);
    // The hook is told the subtree's tree prefix, under which every descendant's leases are indexed.
    expect(told).toEqual([{ rootId: root.task.id, prefix: `${root.task.id}/` }]);
    expect(`${grandchild.task.chain.join('/')}/`.startsWith(told[0]!.prefix)).toBe(true);
    expect(await tasks.runCascades()).toBe(0);
  });
});
