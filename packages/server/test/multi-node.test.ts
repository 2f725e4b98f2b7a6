import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustosNode, createDpopProof, generateDpopKeyPair } from '@custos/core';
import { createStorage } from '@custos/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../test-support/postgres.js';

/** Two custos nodes on one PostgreSQL database, as in an HA deployment. */
describe.skipIf(!hasPostgres())('two nodes on one PostgreSQL database', () => {
  let db: TestDatabase;
  let dir: string;
  let a: CustosNode;
  let b: CustosNode;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'custos-ha-'));
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

  it('a policy written or deleted on one node takes effect on the other after its refresh', async () => {
    const A = a.services();
    const B = b.services();
    await A.policies.write(
      'ha-read',
      'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/ha/");',
      'test',
    );
    const { token } = await A.tokens.create({ policies: ['ha-read'], ttlMs: 600_000 });
    const principal = await B.authenticate(token, { method: 'GET', url: 'test' });
    const allowed = () => B.authorize(principal, 'read', 'kv/ha/x', {}).allowed;
    expect(await B.policies.refresh()).toBe(true);
    expect(allowed()).toBe(true);
    expect(await B.policies.refresh()).toBe(false);

    await A.policies.delete('ha-read');
    expect(await B.policies.refresh()).toBe(true);
    expect(allowed()).toBe(false);
  });

  it('a task revoked on one node is refused on the other at once', async () => {
    const A = a.services();
    const B = b.services();
    const role = await A.roles.write('ha-agent', { policies: [], max_ttl_ms: 600_000 });
    const task = await A.tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000 });
    await expect(B.authenticate(task.token, { method: 'GET', url: 'test' })).resolves.toMatchObject({ kind: 'task' });
    // Both nodes compute accessors with the one key kept in storage.
    expect((await B.tasks.findByAccessor(task.task.accessor)).id).toBe(task.task.id);
    await A.tasks.revoke(task.task.id, 'test');
    await expect(B.authenticate(task.token, { method: 'GET', url: 'test' })).rejects.toMatchObject({
      code: 'CUSTOS_ERR_UNAUTHENTICATED',
    });
  });

  it('a role suspended on one node is refused on the other at once, and a rewrite racing it does not undo it', async () => {
    const A = a.services();
    const B = b.services();
    const role = await A.roles.write('ha-quarantine', { policies: [], max_ttl_ms: 600_000 });
    const task = await A.tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000 });
    await expect(B.authenticate(task.token, { method: 'GET', url: 'test' })).resolves.toMatchObject({ kind: 'task' });
    // The suspension on B and a rewrite of the role on A, at the same time: the rewrite keeps it, whichever lands first.
    await Promise.all([
      B.roles.suspend('ha-quarantine', {}, { by: 'test', at: new Date().toISOString() }),
      A.roles.write('ha-quarantine', { policies: [], max_ttl_ms: 900_000 }),
    ]);
    for (const node of [A, B]) {
      await expect(node.authenticate(task.token, { method: 'GET', url: 'test' })).rejects.toMatchObject({
        code: 'CUSTOS_ERR_SUSPENDED',
      });
      const current = await node.roles.read('ha-quarantine');
      await expect(node.tasks.start({ role: current, sub: 'test', via: 'operator' })).rejects.toMatchObject({
        code: 'CUSTOS_ERR_SUSPENDED',
      });
    }
    expect((await B.roles.read('ha-quarantine')).max_ttl_ms).toBe(900_000);
    await A.roles.resume('ha-quarantine', {});
    await expect(B.authenticate(task.token, { method: 'GET', url: 'test' })).resolves.toMatchObject({ kind: 'task' });
  });

  it('a DPoP proof accepted by one node is refused by the other: proofs are single-use across nodes', async () => {
    const A = a.services();
    const B = b.services();
    const role = await A.roles.write('ha-dpop', { policies: [], max_ttl_ms: 600_000 });
    const keys = await generateDpopKeyPair();
    const task = await A.tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000, jkt: keys.jkt });
    const url = `${A.issuer.replace(/\/+$/, '')}/v1/secrets/data/kv/ha/x`;
    const proof = await createDpopProof({ ...keys, method: 'GET', url, accessToken: task.token });
    const context = { method: 'GET', url, dpop: proof };
    await expect(A.authenticate(task.token, context)).resolves.toMatchObject({ kind: 'task' });
    await expect(B.authenticate(task.token, context)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
    // A fresh proof works on either node.
    const fresh = await createDpopProof({ ...keys, method: 'GET', url, accessToken: task.token });
    await expect(B.authenticate(task.token, { method: 'GET', url, dpop: fresh })).resolves.toMatchObject({
      kind: 'task',
    });
  });

  it('a honeytoken created on one node is watched by the other after its refresh; so is its deletion', async () => {
    const A = a.services();
    const B = b.services();
    const created = await A.honeytokens.create('kv/ha/decoy', 'generic', {}, 'test');
    const fingerprint = A.auditHmac(created.data.token!);
    expect(A.honeytokens.watch.hasPath('kv/ha/decoy')).toBe(true);
    expect(B.honeytokens.watch.hasPath('kv/ha/decoy')).toBe(false);
    await B.honeytokens.load();
    expect(B.honeytokens.watch.hasPath('kv/ha/decoy')).toBe(true);
    // Both nodes hash with the deployment's one audit key: a value presented on either is recognised.
    expect(B.honeytokens.watch.hasFingerprint(fingerprint)).toBe(true);
    expect(B.honeytokens.list()).toEqual(A.honeytokens.list());
    await A.honeytokens.delete('kv/ha/decoy');
    await B.honeytokens.load();
    expect(B.honeytokens.watch.hasPath('kv/ha/decoy')).toBe(false);
    expect(B.honeytokens.watch.hasFingerprint(fingerprint)).toBe(false);
  });
});
