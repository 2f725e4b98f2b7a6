import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Barrier,
  createTaskMinter,
  parseDuration,
  RoleService,
  type Storage,
  sealJson,
  TASK_RETENTION_MS,
  type TaskRecord,
  TaskService,
  TaskSigningKeys,
  type TaskTokenSubject,
} from '@custos/core';
import { createStorage } from '@custos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../test-support/postgres.js';
import type { Backend } from './test-server.js';

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];

/** The subject a task's own token would authenticate as, straight from its record. */
const subjectOf = (r: TaskRecord): TaskTokenSubject => ({
  sub: r.sub,
  task_id: r.id,
  parent_task_id: r.parent_id,
  scope: r.scope,
  depth: r.depth,
  role: r.role,
  chain: r.chain,
  act: r.act,
  exp: Math.floor(r.expires_at / 1000),
  jkt: r.jkt,
});

describe.each(backends)('task expiry, retention and accessors on %s', (backend) => {
  let dir: string;
  let database: TestDatabase | undefined;
  let storage: Storage;
  let barrier: Barrier;
  let clock: number;
  let told: string[];
  const services = async () => {
    const roles = new RoleService({ storage, cipher: barrier });
    const keys = await TaskSigningKeys.load(storage.entries, barrier);
    const tasks = new TaskService({
      storage,
      cipher: barrier,
      roles,
      minter: createTaskMinter(keys, { issuer: 'https://custos.test', audience: 'custos' }),
      accessorKey: accessorKey,
      now: () => clock,
    });
    tasks.onTaskEnded(async ({ rootId }) => {
      told.push(rootId);
    });
    const role = await roles.write('worker', { policies: [], max_ttl_ms: parseDuration('1h'), max_depth: 3 });
    return { tasks, role };
  };
  const accessorKey = randomBytes(32);
  const row = (namespace: string, key: string) => storage.entries.get(namespace, key);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custos-reaper-test-'));
    database = backend === 'postgres' ? await createTestDatabase() : undefined;
    storage = createStorage(database?.url ?? `sqlite:${join(dir, 'custos.db')}`, { sqlite: { exclusive: true } });
    await storage.migrate();
    const rootKey = randomBytes(32);
    const binding = { keyringId: randomBytes(16).toString('hex'), context: 'reaper-test' };
    barrier = new Barrier(storage.entries);
    await barrier.createKeyring(rootKey, binding);
    await barrier.unseal(Buffer.from(rootKey), binding);
    clock = Date.now();
    told = [];
  });
  afterEach(async () => {
    await storage.close();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('marks an expired subtree and runs its cascades, keeps it readable for the retention, then deletes every row', async () => {
    const { tasks, role } = await services();
    const root = await tasks.start({ role, sub: 'test', via: 'operator', ttlMs: parseDuration('10m') });
    const child = await tasks.delegate(subjectOf(await tasks.record(root.task.id)), {});
    expect(await tasks.reapExpired()).toBe(0);

    clock += parseDuration('10m');
    expect(await tasks.reapExpired()).toBe(2);
    expect(told.sort()).toEqual([root.task.id, child.task.id].sort());
    // Ended, still readable: by id, in the tree, by accessor.
    expect((await tasks.show(root.task.id)).state).toBe('expired');
    expect((await tasks.tree(root.task.id)).map((v) => v.id)).toEqual([root.task.id, child.task.id]);
    expect((await tasks.findByAccessor(child.task.accessor)).id).toBe(child.task.id);
    // An expired task cannot be brought back, nor a token reissued for it.
    await expect(tasks.extend(root.task.id, parseDuration('5m'))).rejects.toMatchObject({
      code: 'CUSTOS_ERR_NOT_FOUND',
    });
    await expect(tasks.reissue(child.task.id)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
    // A second round within the retention changes nothing.
    expect(await tasks.reapExpired()).toBe(0);
    expect(told).toHaveLength(2);

    clock += TASK_RETENTION_MS;
    expect(await tasks.reapExpired()).toBe(2);
    for (const issued of [root, child]) {
      await expect(tasks.show(issued.task.id)).rejects.toMatchObject({ code: 'CUSTOS_ERR_NOT_FOUND' });
      await expect(tasks.findByAccessor(issued.task.accessor)).rejects.toMatchObject({ code: 'CUSTOS_ERR_NOT_FOUND' });
      expect(await row('task', issued.task.id)).toBeUndefined();
      expect(await row('task.state', issued.task.id)).toBeUndefined();
      expect(await row('task.tree', `${issued.task.chain.join('/')}/`)).toBeUndefined();
    }
    expect(await storage.entries.listExpired('task', clock, 10)).toEqual([]);
    expect(told).toHaveLength(2);
  });

  it('handles every due task in one call, however many batches it takes', async () => {
    const { tasks, role } = await services();
    for (let i = 0; i < 23; i++) await tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000 });
    clock += 60_000;
    expect(await tasks.reapExpired(5)).toBe(23);
    expect(told).toHaveLength(23);
    clock += TASK_RETENTION_MS;
    expect(await tasks.reapExpired(5)).toBe(23);
    expect((await tasks.list()).tasks).toEqual([]);
  });

  it('does not cascade a revoked task again when it expires, and deletes it after the retention', async () => {
    const { tasks, role } = await services();
    const root = await tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000 });
    await tasks.revoke(root.task.id, 'operator');
    expect(told).toEqual([root.task.id]);
    clock += 60_000;
    expect(await tasks.reapExpired()).toBe(1);
    expect(await tasks.show(root.task.id)).toMatchObject({ state: 'revoked', ended_by: root.task.id });
    expect(told).toEqual([root.task.id]);
    clock += TASK_RETENTION_MS;
    expect(await tasks.reapExpired()).toBe(1);
    await expect(tasks.show(root.task.id)).rejects.toMatchObject({ code: 'CUSTOS_ERR_NOT_FOUND' });
  });

  it('a reaper that was down longer than the retention still runs every cascade, after the rows are gone', async () => {
    const { tasks, role } = await services();
    const root = await tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000 });
    const child = await tasks.delegate(subjectOf(await tasks.record(root.task.id)), {});
    const prefixes: string[] = [];
    tasks.onTaskEnded(async ({ prefix }) => {
      prefixes.push(prefix);
    });
    clock += 60_000 + TASK_RETENTION_MS + 1;
    expect(await tasks.reapExpired()).toBe(4); // each task: ended, then deleted, in one call
    expect(told.sort()).toEqual([root.task.id, child.task.id].sort());
    expect(prefixes.sort()).toEqual([`${root.task.id}/`, `${root.task.id}/${child.task.id}/`].sort());
    expect(await row('task', root.task.id)).toBeUndefined();
  });

  it('a cascade whose hook failed runs later, even once its task is deleted', async () => {
    const { tasks, role } = await services();
    const root = await tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000 });
    let down = true;
    tasks.onTaskEnded(async () => {
      if (down) throw new Error('lease engine unreachable');
    });
    clock += 60_000;
    await expect(tasks.reapExpired()).rejects.toThrow('lease engine unreachable');
    clock += TASK_RETENTION_MS;
    await expect(tasks.reapExpired()).rejects.toThrow('lease engine unreachable');
    expect(await row('task', root.task.id)).toBeUndefined();
    down = false;
    told = [];
    expect(await tasks.runCascades()).toBe(1);
    expect(told).toEqual([root.task.id]);
    expect(await tasks.runCascades()).toBe(0);
  });

  it('a failing hook leaves only its own cascade for later: those that ran before it are not run again', async () => {
    const { tasks, role } = await services();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000 })).task.id);
    }
    const failing = ids[1]!;
    let failures = 1;
    tasks.onTaskEnded(async ({ rootId }) => {
      if (rootId === failing && failures-- > 0) throw new Error('lease engine unreachable');
    });
    clock += 60_000;
    await expect(tasks.reapExpired()).rejects.toThrow('lease engine unreachable');
    expect(await tasks.runCascades()).toBeGreaterThanOrEqual(1);
    // Each cascade is told once, except the one whose hook failed: once more.
    const counts = ids.map((id) => told.filter((t) => t === id).length);
    expect(counts).toEqual(ids.map((id) => (id === failing ? 2 : 1)));
    expect(await tasks.runCascades()).toBe(0);
  });

  it('records that fail their integrity check do not stall the reaper', async () => {
    const { tasks, role } = await services();
    for (let i = 0; i < 3; i++) {
      const id = `tsk_${randomBytes(16).toString('base64url')}`;
      await storage.entries.put('task', id, randomBytes(120), { expiresAt: clock - 1_000 + i });
    }
    const live = await tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000 });
    clock += 60_000;
    expect(await tasks.reapExpired(3)).toBe(4);
    expect(told).toEqual([live.task.id]);
    expect((await tasks.show(live.task.id)).state).toBe('expired');
    // They stay for an operator to see, out of the reaper's way until the next retention.
    expect(await storage.entries.listExpired('task', clock, 10)).toEqual([]);
  });

  it('two nodes reaping at once end and delete each task', async () => {
    const a = await services();
    const b = await services();
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      ids.push((await a.tasks.start({ role: a.role, sub: 'test', via: 'operator', ttlMs: 60_000 })).task.id);
    }
    clock += 60_000;
    await Promise.all([a.tasks.reapExpired(4), b.tasks.reapExpired(4)]);
    // Each ended task's cascade ran (at least once: hooks are idempotent).
    expect(new Set(told)).toEqual(new Set(ids));
    for (const id of ids) expect((await a.tasks.show(id)).state).toBe('expired');
    clock += TASK_RETENTION_MS;
    await Promise.all([a.tasks.reapExpired(4), b.tasks.reapExpired(4)]);
    for (const id of ids) expect(await row('task', id)).toBeUndefined();
  });

  it('computes accessors: no index row, and only an accessor the sealed record names finds the task', async () => {
    const { tasks, role } = await services();
    const issued = await tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000 });
    const { accessor, id } = issued.task;
    expect(accessor).toMatch(/^tac_[A-Za-z0-9_-]{22}$/);
    expect(accessor.slice(4)).not.toBe(id.slice(4));
    expect(await row('task.accessor', accessor)).toBeUndefined();
    expect((await tasks.findByAccessor(accessor)).id).toBe(id);
    // Another node with the same key computes the same accessor.
    expect((await (await services()).tasks.findByAccessor(accessor)).id).toBe(id);
    // Well-formed accessors that were never issued, and malformed ones, find nothing.
    for (const bogus of [
      `tac_${randomBytes(16).toString('base64url')}`,
      `${accessor.slice(0, -1)}${accessor.endsWith('A') ? 'B' : 'A'}`,
      `tac_${id.slice(4)}`,
      id,
      'tac_short',
    ]) {
      await expect(tasks.findByAccessor(bogus)).rejects.toMatchObject({ code: 'CUSTOS_ERR_NOT_FOUND' });
    }
  });

  it('still finds a task made before accessors were computed by its index row, and reaps that row with it', async () => {
    const { tasks, role } = await services();
    const issued = await tasks.start({ role, sub: 'test', via: 'operator', ttlMs: 60_000 });
    // Rewrite the task as an older version stored it: a random accessor and an index row.
    const legacy = `tac_${randomBytes(16).toString('base64url')}`;
    const record = { ...(await tasks.record(issued.task.id)), accessor: legacy };
    const stored = await row('task', record.id);
    await storage.entries.put('task', record.id, sealJson(barrier, 'task', record.id, record), {
      expiresAt: stored?.expiresAt ?? null,
    });
    await storage.entries.put('task.accessor', legacy, sealJson(barrier, 'task.accessor', legacy, { id: record.id }), {
      expiresAt: record.expires_at,
    });
    expect((await tasks.findByAccessor(legacy)).id).toBe(record.id);
    // The computed accessor no longer matches what the record names.
    await expect(tasks.findByAccessor(issued.task.accessor)).rejects.toMatchObject({ code: 'CUSTOS_ERR_NOT_FOUND' });
    clock += 60_000 + TASK_RETENTION_MS;
    expect(await tasks.reapExpired()).toBe(2); // expired, then (already past retention) deleted
    expect(told).toEqual([record.id]);
    expect(await row('task.accessor', legacy)).toBeUndefined();
    expect(await row('task', record.id)).toBeUndefined();
  });
});
