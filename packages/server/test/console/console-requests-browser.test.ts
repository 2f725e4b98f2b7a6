import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureConsoleBuilt } from '../../../../test-support/console-build.js';
import { type JitFixture, jitFixture } from '../access-request-support.js';
import { startTestServer, type TestServer } from '../test-server.js';
import { launchChromium, openPage, SCREENSHOT_DIR, signIn, type WatchedPage } from './browser-support.js';

// issue 14's "done when", in a real Chromium: an agent asks for a scope, a
// human approves it in the browser, the agent's read (with the token it
// already held) succeeds, and the elevation is gone the moment the task ends.

describe('approving an access request in the console', () => {
  let s: TestServer;
  let f: JitFixture;
  let browser: Browser;
  let w: WatchedPage;
  let base: string;

  beforeAll(async () => {
    ensureConsoleBuilt();
    s = await startTestServer('sqlite');
    f = await jitFixture(s);
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
    w = await openPage(browser);
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('an approver approves (narrowing the TTL) in the browser; the agent reads; ending the task ends the elevation', async () => {
    const task = await f.startTask();
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(403);

    // The approver holds an operator token with the approver policy only.
    await signIn(w.page, `${base}/ui/#requests`, f.approver);
    await w.page.waitForSelector('[data-testid="live"].on');
    await w.page.waitForSelector('main section');

    // The request appears live, from the event stream.
    const created = await f.ok(
      await f.request(task.token, { scope: 'read:kv/finance/ledger', reason: 'reconcile Q3 ledger', ttl: '10m' }),
      201,
    );
    const id = created.request.id as string;
    const card = w.page.locator(`[data-request-id="${id}"]`);
    await card.waitFor();
    expect(await card.getAttribute('data-status')).toBe('pending');
    const text = await card.innerText();
    expect(text).toContain('read:kv/finance/ledger');
    expect(text).toContain('reconcile Q3 ledger');
    expect(text).toContain(task.id);
    await w.page.screenshot({ path: join(SCREENSHOT_DIR, 'requests-pending.png'), fullPage: true });

    await card.locator('input[name="ttl"]').fill('5m');
    await card.locator('[data-testid="approve"]').click();
    // Decided: it leaves the pending list; under "approved" it shows who decided.
    await card.waitFor({ state: 'detached' });
    await w.page.selectOption('select', 'approved');
    const approved = w.page.locator(`[data-request-id="${id}"][data-status="approved"]`);
    await approved.waitFor();
    expect(await approved.innerText()).toMatch(/300s/);
    await w.page.screenshot({ path: join(SCREENSHOT_DIR, 'requests-approved.png'), fullPage: true });

    // The agent's token, minted before the approval, now reads the ledger — and nothing else.
    const read = await f.call('GET', '/v1/secrets/data/kv/finance/ledger', task.token);
    expect(read.statusCode, read.body).toBe(200);
    expect(read.json().data.value).toBe(f.ledger);
    expect(await f.read(task.token, 'kv/finance/payroll')).toBe(403);

    // An operator watching the task trees sees the elevation on the task…
    const ops = await openPage(browser);
    await signIn(ops.page, `${base}/ui/#tasks`, s.rootToken);
    const node = ops.page.locator(`[data-task-id="${task.id}"]`);
    await node.locator(`[data-elevation="${id}"]`).waitFor();
    expect(await node.locator(`[data-elevation="${id}"]`).innerText()).toContain('read:kv/finance/ledger');
    await ops.page.screenshot({ path: join(SCREENSHOT_DIR, 'tasks-elevated.png'), fullPage: true });

    // …the task ends: the elevation is gone at once, and the tree shows it ended.
    await f.ok(await f.call('POST', `/v1/tasks/${task.id}/end`, undefined));
    expect(await f.read(task.token, 'kv/finance/ledger')).toBe(401);
    await ops.page.locator(`[data-task-id="${task.id}"][data-state="ended"]`).waitFor();
    expect(await node.locator('[data-elevation]').count()).toBe(0);
    expect(ops.dialogs).toEqual([]);
    await ops.page.context().close();
    expect(w.dialogs).toEqual([]);
  });

  it('a deny with a reason is recorded and shown', async () => {
    const task = await f.startTask();
    const created = await f.ok(
      await f.request(task.token, { scope: 'read:kv/finance/payroll', reason: 'just curious', ttl: '10m' }),
      201,
    );
    const id = created.request.id as string;
    await w.page.selectOption('select', 'pending');
    const card = w.page.locator(`[data-request-id="${id}"]`);
    await card.waitFor();
    await card.locator('input[name="deny-reason"]').fill('not part of the Q3 task');
    await card.locator('[data-testid="deny"]').click();
    await card.waitFor({ state: 'detached' });
    const shown = await f.ok(await f.call('GET', `/v1/requests/${id}`, f.approver));
    expect(shown.request).toMatchObject({ status: 'denied', deny_reason: 'not part of the Q3 task' });
    expect(await f.read(task.token, 'kv/finance/payroll')).toBe(403);
  });
});
