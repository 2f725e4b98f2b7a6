import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sealJson } from '../common/cipher.js';
import { taskKeysFixture } from '../task-tokens/test-support/task-keys-fixture.js';
import { RoleService, type TaskRecord, TaskService } from '../tasks/index.js';
import { TokenService } from '../tokens/index.js';
import { PrincipalAuthenticator } from './principal-authenticator.js';
import { createTaskMinter } from './task-minter.js';

const ISSUER = 'https://custos.test';
const context = { method: 'GET', url: `${ISSUER}/v1/x` };

async function setup() {
  const { store, barrier, keys } = await taskKeysFixture();
  const storage = {
    entries: store,
    transaction: <T>(fn: (tx: { entries: typeof store }) => Promise<T>) => fn({ entries: store }),
  };
  const roles = new RoleService({ storage, cipher: barrier });
  const tasks = new TaskService({
    storage: storage as never,
    cipher: barrier,
    roles,
    minter: createTaskMinter(keys, { issuer: ISSUER, audience: 'custos' }),
    accessorKey: randomBytes(32),
  });
  const tokens = new TokenService({ storage: storage as never, cipher: barrier });
  const auth = new PrincipalAuthenticator({ tokens, tasks, roles, keys, issuer: ISSUER, audience: 'custos' });
  /** Rewrites a task's record as an earlier build stored it: no version (and, unless kept, no role incarnation). */
  const asLegacy = async (id: string, labels: Record<string, string>, keepRoleId = false) => {
    const { v: _v, role_id: roleId, ...legacy } = { ...(await tasks.record(id)), labels } as TaskRecord;
    const record = keepRoleId && roleId ? { ...legacy, role_id: roleId } : legacy;
    await store.put('task', id, sealJson(barrier, 'task', id, record));
  };
  return { store, barrier, roles, tasks, auth, asLegacy };
}

describe('which stored tasks a token may still act as', () => {
  it('a task of a role deleted and created again under its name is refused; the new role’s tasks are not', async () => {
    const { roles, tasks, auth } = await setup();
    const role = await roles.write('worker', { policies: [], max_ttl_ms: 600_000 });
    expect(role.id).toMatch(/^rol_/);
    const old = await tasks.start({ role, sub: 'test', via: 'operator' });
    await expect(auth.authenticate(old.token, context)).resolves.toMatchObject({ kind: 'task' });
    // An update keeps the incarnation.
    const updated = await roles.write('worker', { policies: ['x'], max_ttl_ms: 600_000 });
    expect(updated.id).toBe(role.id);
    await expect(auth.authenticate(old.token, context)).resolves.toMatchObject({ kind: 'task' });
    await roles.delete('worker');
    const again = await roles.write('worker', { policies: [], max_ttl_ms: 600_000 });
    expect(again.id).not.toBe(role.id);
    await expect(auth.authenticate(old.token, context)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
    const fresh = await tasks.start({ role: again, sub: 'test', via: 'operator' });
    await expect(auth.authenticate(fresh.token, context)).resolves.toMatchObject({ kind: 'task' });
  });

  it('a task stored by an earlier build with labels (agent-chosen then) is refused, and cannot delegate', async () => {
    const { roles, tasks, auth, asLegacy } = await setup();
    const role = await roles.write('worker', { policies: [], max_ttl_ms: 600_000, grantable_labels: ['team'] });
    const task = await tasks.start({ role, sub: 'test', via: 'operator', labels: { team: 'search' } });
    await expect(auth.authenticate(task.token, context)).resolves.toMatchObject({ labels: { team: 'search' } });
    // Written back as before labels had an origin (keeping the role's id,
    // so that only the label rule can refuse it).
    await asLegacy(task.task.id, { team: 'search' }, true);
    const record = await tasks.record(task.task.id);
    await expect(auth.authenticate(task.token, context)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
    expect(record.v).toBeUndefined();
    const subject = (await auth.verifyTaskToken(task.token, context)) as Parameters<TaskService['delegate']>[0];
    await expect(tasks.delegate(subject, {}, role)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNAUTHENTICATED' });
  });

  it('a task stored by an earlier build without labels, of a role from then, keeps working', async () => {
    const { store, barrier, roles, tasks, auth, asLegacy } = await setup();
    const role = await roles.write('worker', { policies: [], max_ttl_ms: 600_000 });
    const task = await tasks.start({ role, sub: 'test', via: 'operator' });
    await asLegacy(task.task.id, {});
    // The role as an earlier build stored it: no id, no labels.
    const { id: _id, labels: _labels, ...legacyRole } = role;
    await store.put('role', 'worker', sealJson(barrier, 'role', 'worker', legacyRole));
    await expect(auth.authenticate(task.token, context)).resolves.toMatchObject({ kind: 'task', labels: {} });
  });
});

describe('a role’s labels apply to its live tasks at once', () => {
  const labelsOf = async (auth: PrincipalAuthenticator, token: string) =>
    ((await auth.authenticate(token, context)) as { labels: Record<string, string> }).labels;

  it('added, changed and removed role labels reach a task and its children at their next request', async () => {
    const { roles, tasks, auth } = await setup();
    const role = await roles.write('worker', {
      policies: [],
      max_ttl_ms: 600_000,
      labels: { team: 'search' },
      grantable_labels: ['env'],
    });
    const root = await tasks.start({ role, sub: 'test', via: 'operator', labels: { env: 'prod' } });
    const subject = (await auth.verifyTaskToken(root.token, context)) as Parameters<TaskService['delegate']>[0];
    const child = await tasks.delegate(subject, { labels: { 'agent.step': 'fetch' } }, role);
    expect(await labelsOf(auth, child.token)).toEqual({ team: 'search', env: 'prod', 'agent.step': 'fetch' });

    // An operator quarantines the role and moves it to another team.
    await roles.write('worker', {
      policies: [],
      max_ttl_ms: 600_000,
      labels: { team: 'ads', quarantine: 'true' },
    });
    expect(await labelsOf(auth, root.token)).toEqual({ team: 'ads', quarantine: 'true', env: 'prod' });
    expect(await labelsOf(auth, child.token)).toEqual({
      team: 'ads',
      quarantine: 'true',
      env: 'prod',
      'agent.step': 'fetch',
    });
    // What listings show is what policies see.
    expect((await tasks.show(child.task.id)).labels).toEqual(await labelsOf(auth, child.token));
    expect((await tasks.tree(root.task.id)).map((t) => t.labels)).toEqual([
      await labelsOf(auth, root.token),
      await labelsOf(auth, child.token),
    ]);

    // Lifting the quarantine and the team: gone from the tasks too; the granted label stays.
    await roles.write('worker', { policies: [], max_ttl_ms: 600_000, labels: {} });
    expect(await labelsOf(auth, root.token)).toEqual({ env: 'prod' });
    expect(await labelsOf(auth, child.token)).toEqual({ env: 'prod', 'agent.step': 'fetch' });
  });

  it('a label both granted and set by the role stays when the role drops it', async () => {
    const { roles, tasks, auth } = await setup();
    const role = await roles.write('worker', {
      policies: [],
      max_ttl_ms: 600_000,
      labels: { team: 'search' },
      grantable_labels: ['team'],
    });
    const task = await tasks.start({ role, sub: 'test', via: 'operator', labels: { team: 'search' } });
    await roles.write('worker', { policies: [], max_ttl_ms: 600_000, labels: {} });
    expect(await labelsOf(auth, task.token)).toEqual({ team: 'search' });
  });

  it('costs no storage read: one role read per authentication, as before', async () => {
    const { store, roles, tasks, auth } = await setup();
    const role = await roles.write('worker', { policies: [], max_ttl_ms: 600_000, labels: { team: 'search' } });
    const task = await tasks.start({ role, sub: 'test', via: 'operator' });
    const reads = new Map<string, number>();
    const get = store.get.bind(store);
    store.get = (namespace: string, key: string) => {
      reads.set(namespace, (reads.get(namespace) ?? 0) + 1);
      return get(namespace, key);
    };
    await auth.authenticate(task.token, context);
    expect(reads.get('role')).toBe(1);
    expect(reads.get('task')).toBe(1);
  });
});
