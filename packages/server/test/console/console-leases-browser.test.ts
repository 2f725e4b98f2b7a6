import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createEngine } from '@custos/engines';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureConsoleBuilt } from '../../../../test-support/console-build.js';
import {
  createTestDatabase,
  hasPostgres,
  postgresRoleExists,
  type TestDatabase,
} from '../../../../test-support/postgres.js';
import { startTestServer, type TestServer } from '../test-server.js';
import { launchChromium, openPage, SCREENSHOT_DIR, signIn, type WatchedPage } from './browser-support.js';

// The leases page against real dynamic PostgreSQL credentials: leases listed
// by the task they were issued to, and a revoke from the browser that drops
// the database user.

describe.skipIf(!hasPostgres())('leases in the console', () => {
  let s: TestServer;
  let target: TestDatabase;
  let browser: Browser;
  let w: WatchedPage;
  let base: string;
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };

  beforeAll(async () => {
    ensureConsoleBuilt();
    target = await createTestDatabase();
    s = await startTestServer('sqlite', { engineFactory: createEngine });
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/policies/db-read',
        payload: {
          policy:
            'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"pg-main/");\n' +
            'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
        },
      }),
    );
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/roles/db-agent',
        payload: { policies: ['db-read'], max_ttl: '15m', max_depth: 2 },
      }),
    );
    await ok(
      await s.call({ method: 'PUT', url: '/v1/engines/pg-main', payload: { type: 'postgres', url: target.url } }),
    );
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/engines/pg-main/roles/reader',
        payload: { default_ttl: '5m', max_ttl: '1h' },
      }),
    );
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
    w = await openPage(browser);
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close();
    await target?.drop();
  });

  it('groups leases by task and revokes one after a confirmation, dropping its database user', async () => {
    const task = await ok(await s.call({ method: 'POST', url: '/v1/roles/db-agent/tasks', payload: { ttl: '10m' } }));
    const child = await ok(
      await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: task.token, payload: { ttl: '5m' } }),
    );
    const issue = async (token: string) =>
      ok(await s.call({ method: 'POST', url: '/v1/creds/pg-main/reader', token, payload: {} }));
    const first = await issue(task.token);
    const second = await issue(task.token);
    const childLease = await issue(child.token);
    expect(await postgresRoleExists(first.username)).toBe(true);

    await signIn(w.page, `${base}/ui/#leases`, s.rootToken);
    const group = (taskId: string) => w.page.locator('.group', { has: w.page.locator(`code:text-is("${taskId}")`) });
    await group(task.task_id).waitFor();
    await expect.poll(() => group(task.task_id).locator('[data-lease-id]').count()).toBe(2);
    await expect.poll(() => group(child.task_id).locator('[data-lease-id]').count()).toBe(1);
    // No password on the page: a lease shows its user, never its credential.
    const text = await w.page.locator('main').innerText();
    for (const lease of [first, second, childLease]) expect(text).not.toContain(lease.password);
    await w.page.screenshot({ path: join(SCREENSHOT_DIR, 'leases.png'), fullPage: true });

    await w.page.locator(`[data-lease-id="${first.lease_id}"] button`).click();
    await w.page.click('[data-testid="confirm"]');
    await w.page.locator(`[data-lease-id="${first.lease_id}"]`).waitFor({ state: 'detached' });
    expect(await postgresRoleExists(first.username)).toBe(false);
    expect(await postgresRoleExists(second.username)).toBe(true);
    const lease = await ok(await s.call({ method: 'GET', url: `/v1/leases/${first.lease_id}` }));
    expect(lease.state).toBe('revoked');
    expect(w.dialogs).toEqual([]);
  });
});
