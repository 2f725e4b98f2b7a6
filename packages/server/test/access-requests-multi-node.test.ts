import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustosNode, type Decider, type Principal } from '@custos/core';
import { createStorage } from '@custos/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../test-support/postgres.js';

/** Two custos nodes on one PostgreSQL database: elevations seen late (never early), revoked at once everywhere. */
describe.skipIf(!hasPostgres())('access requests on two nodes of one PostgreSQL database', () => {
  let db: TestDatabase;
  let dir: string;
  let a: CustosNode;
  let b: CustosNode;
  const approver = (name: string): Decider => ({
    kind: 'operator',
    name,
    root: true,
    policies: [],
    mayApprove: () => true,
  });

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'custos-ha-jit-'));
    const keyFile = join(dir, 'dev-seal.key');
    a = new CustosNode({ storage: createStorage(db.url), seal: { type: 'dev', keyFile }, audit: {} });
    await a.start();
    b = new CustosNode({ storage: createStorage(db.url), seal: { type: 'dev', keyFile }, audit: {} });
    await b.start();
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an elevation approved on one node holds on the other after its refresh; revoked there, it ends at once', async () => {
    const A = a.services();
    const B = b.services();
    const role = await A.roles.write('ha-jit', { policies: [], max_ttl_ms: 600_000, request_scope: 'read:kv/ha/*' });
    const task = await A.tasks.start({ role, sub: 'bootstrap:ha', via: 'operator', ttlMs: 120_000 });
    const subject = (await A.authenticate(task.token, { method: 'GET', url: 'test' })) as Principal & { kind: 'task' };
    const { request } = await A.requests.create(subject.task, { scope: 'read:kv/ha/x', reason: 'ha' });
    await A.requests.approve(request.id, approver('token:approver-a'));

    const allowedOn = async (node: CustosNode) => {
      const principal = await node.services().authenticate(task.token, { method: 'GET', url: 'test' });
      return node.services().authorize(principal, 'read', 'kv/ha/x', {}).allowed;
    };
    expect(await allowedOn(a)).toBe(true);
    // B has not refreshed: less privilege meanwhile, never more.
    await B.requests.elevations.refresh();
    expect(await allowedOn(b)).toBe(true);

    // Revoked on A: B, with the elevation still in memory, refuses at once (it confirms in storage).
    await A.requests.revoke(request.id, approver('token:approver-a'));
    expect(B.requests.elevations.size).toBe(1);
    expect(await allowedOn(b)).toBe(false);
    expect(await allowedOn(a)).toBe(false);
    expect((await B.requests.show(request.id)).status).toBe('revoked');
  });

  it('an approval on one node and a deny on the other, at the same time: one decision stands', async () => {
    const A = a.services();
    const B = b.services();
    const role = await A.roles.read('ha-jit');
    for (let i = 0; i < 5; i++) {
      const task = await A.tasks.start({ role, sub: `bootstrap:ha-${i}`, via: 'operator', ttlMs: 120_000 });
      const subject = (await A.authenticate(task.token, { method: 'GET', url: 'test' })) as Principal & {
        kind: 'task';
      };
      const { request } = await A.requests.create(subject.task, { scope: 'read:kv/ha/x', reason: `race ${i}` });
      const outcomes = await Promise.allSettled([
        A.requests.approve(request.id, approver('token:approver-a')),
        B.requests.deny(request.id, approver('token:approver-b'), 'no'),
      ]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      expect(won).toHaveLength(1);
      const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason.code).toBe('CUSTOS_ERR_REQUEST_ALREADY_DECIDED');
      const shown = await B.requests.show(request.id);
      expect(shown.status).toBe((won[0] as PromiseFulfilledResult<{ status: string }>).value.status);
    }
  });
});
