import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureConsoleBuilt } from '../../../../test-support/console-build.js';
import { fakeSecret, startTestServer, type TestServer } from '../test-server.js';
import {
  launchChromium,
  openPage,
  SCREENSHOT_DIR,
  signIn,
  startPrefixProxy,
  type WatchedPage,
} from './browser-support.js';

// The console in a real Chromium against a real custos node: sign in, watch
// a task tree grow live as tasks delegate, revoke it and watch it go grey,
// search the audit trail, reveal a secret (an audited read), and the same
// console behind a reverse proxy that mounts custos under a path prefix.
// Every page leaves a screenshot in test-output/console/.

const COORD_POLICY =
  'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");\n' +
  'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/console/");';

describe('the console in Chromium', () => {
  let s: TestServer;
  let base: string;
  let browser: Browser;
  let w: WatchedPage;
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const startRoot = async () =>
    (await ok(await s.call({ method: 'POST', url: '/v1/roles/coord/tasks', payload: { ttl: '10m' } }))) as {
      token: string;
      task_id: string;
    };
  const delegate = async (token: string, ttl: string) =>
    (await ok(await s.call({ method: 'POST', url: '/v1/tasks/delegate', token, payload: { ttl } }))) as {
      token: string;
      task_id: string;
    };
  const shot = (name: string) => w.page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
  const node = (id: string) => w.page.locator(`[data-task-id="${id}"]`);
  /** Submits the audit search and waits for its own results (not the previous search's). */
  const searchAudit = async () => {
    const count = w.page.locator('[data-testid="audit-count"]');
    const before = Number((await count.getAttribute('data-searches')) ?? 0);
    await w.page.click('form.search button[type="submit"]');
    await expect.poll(async () => Number(await count.getAttribute('data-searches'))).toBeGreaterThan(before);
    return w.page.locator('table.audit tbody tr').allInnerTexts();
  };

  beforeAll(async () => {
    ensureConsoleBuilt();
    s = await startTestServer('sqlite');
    await ok(await s.call({ method: 'PUT', url: '/v1/policies/coord', payload: { policy: COORD_POLICY } }));
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/roles/coord',
        payload: { policies: ['coord'], max_ttl: '15m', max_depth: 4 },
      }),
    );
    await ok(
      await s.call({
        method: 'PUT',
        url: '/v1/secrets/data/kv/console/ledger-db',
        payload: { data: { password: fakeSecret() } },
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
  });

  it('signs in with an operator token kept in sessionStorage, never a cookie', async () => {
    await w.page.goto(`${base}/ui/`);
    await shot('sign-in');
    await signIn(w.page, `${base}/ui/`, s.rootToken);
    expect(await w.page.context().cookies()).toEqual([]);
    expect(await w.page.evaluate(() => document.cookie)).toBe('');
    expect(await w.page.evaluate(() => sessionStorage.getItem('custos.operator-token'))).toBe(s.rootToken);
    // The token is never in the URL.
    expect(w.page.url()).not.toContain(s.rootToken);
    await w.page.waitForSelector('[data-testid="live"].on');
  });

  let root: { token: string; task_id: string };
  let child: { token: string; task_id: string };
  let grandchild: { token: string; task_id: string };

  it('draws a task tree that grows live as tasks are started and delegated', async () => {
    await w.page.click('[data-page="tasks"]');
    root = await startRoot();
    await node(root.task_id).waitFor();
    child = await delegate(root.token, '5m');
    await node(child.task_id).waitFor();
    grandchild = await delegate(child.token, '2m');
    await node(grandchild.task_id).waitFor();
    // Drawn nested: the grandchild's box is inside the child's branch, inside the root's.
    const nested = w.page.locator(
      `li:has(> [data-task-id="${root.task_id}"]) li:has(> [data-task-id="${child.task_id}"]) [data-task-id="${grandchild.task_id}"]`,
    );
    await expect.poll(() => nested.count()).toBe(1);
    for (const id of [root.task_id, child.task_id, grandchild.task_id]) {
      expect(await node(id).getAttribute('data-state')).toBe('active');
    }
    await shot('tasks-live');
  });

  it('revokes a tree after a confirmation, and the whole subtree goes grey', async () => {
    await node(root.task_id).locator('[data-testid="revoke-task"]').click();
    await w.page.waitForSelector('[role="dialog"]');
    await shot('tasks-confirm-revoke');
    await w.page.click('[data-testid="confirm"]');
    for (const id of [root.task_id, child.task_id, grandchild.task_id]) {
      await w.page.locator(`[data-task-id="${id}"][data-state="revoked"]`).waitFor();
    }
    const filter = await node(grandchild.task_id).evaluate((el) => getComputedStyle(el).filter);
    expect(filter).toContain('grayscale(1)');
    // Really revoked: the grandchild's token is refused.
    const read = await s.call({ method: 'GET', url: '/v1/secrets/data/kv/console/ledger-db', token: grandchild.token });
    expect(read.statusCode).toBe(401);
    await shot('tasks-revoked');
  });

  it('shows secrets without values until Reveal, which is an audited read', async () => {
    await w.page.click('[data-page="secrets"]');
    await w.page.click('button[data-key="console/"]');
    await w.page.click('button[data-key="ledger-db"]');
    await w.page.waitForSelector('[data-secret-path="kv/console/ledger-db"] dl');
    const hidden = await w.page.locator('main').innerText();
    const value = (await ok(await s.call({ method: 'GET', url: '/v1/secrets/data/kv/console/ledger-db' }))).data
      .password as string;
    expect(hidden).not.toContain(value);
    await shot('secrets-hidden');
    await w.page.click('[data-testid="reveal"]');
    await w.page.waitForSelector('[data-testid="secret-values"]');
    expect(await w.page.locator('[data-testid="secret-values"]').innerText()).toContain(value);
    // Masked again before the screenshot: a screenshot must not hold a value.
    await w.page.click('text=Hide');
    await shot('secrets');
  });

  it('searches the whole trail on the server by path, action, decision and task, with load more and the chain verification shown', async () => {
    // A refused read by a revoked task, to find.
    await s.call({ method: 'GET', url: '/v1/secrets/data/kv/console/ledger-db', token: child.token });
    await w.page.click('[data-page="audit"]');
    await w.page.waitForSelector('[data-testid="audit-verify"].ok');
    expect(await w.page.locator('[data-testid="audit-verify"]').innerText()).toMatch(/Chain verified: \d+ records/);
    // Newer traffic after it: the refused read is older than the newest page of results.
    const refusedSeq = (
      (await ok(
        await s.call({ method: 'GET', url: `/v1/audit/search?task=${child.task_id}&decision=deny&limit=1` }),
      )) as { records: { seq: number }[] }
    ).records[0]!.seq;
    for (let i = 0; i < 120; i++) await s.call({ method: 'GET', url: '/v1/policies/coord' });
    // No filter: the newest 100 records, not yet the refused read; Load more follows the server's cursor to it.
    const everything = await searchAudit();
    expect(everything).toHaveLength(100);
    expect(await w.page.locator('[data-testid="audit-count"]').getAttribute('data-complete')).toBe('false');
    const refusedRow = w.page.locator(`table.audit tbody tr[data-seq="${refusedSeq}"]`);
    expect(await refusedRow.count()).toBe(0);
    await w.page.click('[data-testid="audit-more"]');
    await refusedRow.waitFor();
    expect(await w.page.locator('table.audit tbody tr').count()).toBeGreaterThan(100);
    expect(await refusedRow.innerText()).toContain('deny');
    await shot('audit-load-more');
    await w.page.fill('input[name="path"]', 'kv/console/ledger-db');
    await w.page.fill('input[name="action"]', 'read');
    await w.page.selectOption('select[name="decision"]', 'allow');
    await w.page.waitForSelector('[data-testid="audit-count"]');
    const allowed = await searchAudit();
    // The console's own reveal is in the trail, and only allowed reads match.
    expect(allowed.length).toBeGreaterThanOrEqual(2);
    for (const row of allowed) expect(row).toMatch(/kv\/console\/ledger-db[\s\S]*allow/);
    // The revoked task's refused read: refused before any path was resolved, found by task and decision.
    await w.page.fill('input[name="path"]', '');
    await w.page.fill('input[name="action"]', '');
    await w.page.selectOption('select[name="decision"]', 'deny');
    await w.page.fill('input[name="task"]', child.task_id);
    const refused = await searchAudit();
    expect(refused).toHaveLength(1);
    expect(refused[0]).toContain(child.task_id);
    await shot('audit');
  });

  it('lists leases and alerts (the revoked task’s token used again raised one)', async () => {
    await s.node.services().anomaly?.idle();
    await w.page.click('[data-page="alerts"]');
    await w.page.waitForSelector('[data-alert-id]');
    await shot('alerts');
    await w.page.click('[data-page="leases"]');
    await w.page.waitForSelector('main section');
    await shot('leases-empty');
    await w.page.click('[data-page="requests"]');
    await w.page.waitForSelector('main section, main p');
    await shot('requests');
    expect(w.dialogs).toEqual([]);
    expect(w.errors.filter((e) => /Content Security Policy|Refused to/.test(e))).toEqual([]);
  });

  it('works behind a reverse proxy that mounts custos under a path prefix', async () => {
    const proxy = await startPrefixProxy(base, '/custos/');
    try {
      const p = await openPage(browser);
      await signIn(p.page, `${proxy.url}ui/`, s.rootToken);
      // Every request the page made went through the prefix.
      const requests: string[] = [];
      p.page.on('request', (r) => requests.push(r.url()));
      await p.page.click('[data-page="tasks"]');
      await p.page.waitForSelector('[data-testid="live"].on');
      const fresh = await startRoot();
      await p.page.locator(`[data-task-id="${fresh.task_id}"]`).waitFor();
      await p.page.click('[data-page="audit"]');
      await p.page.waitForSelector('[data-testid="audit-verify"].ok');
      await p.page.screenshot({ path: join(SCREENSHOT_DIR, 'path-prefix.png'), fullPage: true });
      expect(requests.length).toBeGreaterThan(0);
      for (const url of requests) expect(url.startsWith(proxy.url), url).toBe(true);
      // `/custos/ui` redirects to `/custos/ui/`, not to `/ui/`.
      await p.page.goto(proxy.url.replace(/\/$/, '/ui'));
      expect(p.page.url()).toBe(`${proxy.url}ui/`);
      expect(p.dialogs).toEqual([]);
      await p.page.context().close();
    } finally {
      await proxy.close();
    }
  });
});
