import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureConsoleBuilt } from '../../../../test-support/console-build.js';
import { type JitFixture, jitFixture } from '../access-request-support.js';
import { startTestServer, type TestServer } from '../test-server.js';
import { launchChromium, openPage, SCREENSHOT_DIR, signIn, type WatchedPage } from './browser-support.js';

// Attack class: stored XSS against the operator's browser.
//
// Paths, reasons, labels, identity names and secret values are chosen by
// agents (or by whoever controls an identity provider's `sub`). The console
// must show each literally and run none: no dialog, no injected element, no
// script, whatever page shows it. The CSP would block inline script anyway;
// these tests check the escaping itself (the payloads set a global too).

const HOSTILE = [
  '<img src=x onerror="window.__xss=1;alert(1)">',
  '"><script>window.__xss=2;alert(2)</script>',
  'javascript:alert(3)',
  '<svg onload="window.__xss=4;alert(4)">',
  '\'><iframe src="javascript:alert(5)"></iframe>',
  '{{constructor.constructor("alert(6)")()}}',
];
const ISSUER = 'https://idp.xss.example';

describe('hostile strings in every attacker-controlled field are shown as text and never run', () => {
  let s: TestServer;
  let f: JitFixture;
  let browser: Browser;
  let w: WatchedPage;
  let base: string;
  const taskIds: string[] = [];

  beforeAll(async () => {
    ensureConsoleBuilt();
    s = await startTestServer('sqlite');
    f = await jitFixture(s);
    // Identity names: a workload JWT's `sub` becomes the task's identity.
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'xss-1', alg: 'RS256', use: 'sig' };
    await f.ok(
      await f.call('PUT', '/v1/auth/jwt/methods/xss', undefined, {
        issuer: ISSUER,
        audience: 'custos',
        jwks: { keys: [jwk] },
      }),
    );
    await f.ok(
      await f.call('PUT', '/v1/roles/xss-agent', undefined, {
        policies: ['agent-public'],
        auth: ['jwt'],
        jwt_methods: ['xss'],
        bound_claims: { tenant: 'xss-tenant' },
        max_ttl: '30m',
        max_depth: 3,
      }),
    );
    for (const sub of HOSTILE.slice(0, 3)) {
      const jwt = await new SignJWT({ tenant: 'xss-tenant' })
        .setProtectedHeader({ alg: 'RS256', kid: 'xss-1' })
        .setIssuer(ISSUER)
        .setAudience('custos')
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      const login = await f.ok(await f.call('POST', '/v1/auth/jwt/login', null, { role: 'xss-agent', jwt }));
      taskIds.push(login.task_id);
      // Labels: an agent's own labels on a child it delegates.
      const labels = Object.fromEntries(HOSTILE.map((h, i) => [`agent.h${i}`, h]));
      const child = await f.ok(await f.call('POST', '/v1/tasks/delegate', login.token, { labels, ttl: '2m' }));
      taskIds.push(child.task_id);
      // A read it may not do, for the audit trail to show under its hostile identity.
      await f.call('GET', '/v1/secrets/data/kv/finance/ledger', login.token);
    }
    // Reasons: an agent's access requests.
    const task = await f.startTask();
    for (const [i, scope] of ['read:kv/finance/ledger', 'read:kv/finance/payroll'].entries()) {
      await f.ok(await f.request(task.token, { scope, reason: `${HOSTILE[i]} ${HOSTILE[i + 3]}`, ttl: '5m' }), 201);
    }
    // Paths (the path grammar refuses <, >, quotes and spaces, so the most
    // hostile path it admits) and a secret's values.
    await f.ok(
      await f.call('PUT', '/v1/secrets/data/kv/xss/onerror=alert,1', undefined, {
        // Field names have a grammar of their own; values are free text.
        data: Object.fromEntries(HOSTILE.map((h, i) => [`field-${i}`, h])),
      }),
    );
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
    w = await openPage(browser);
    await signIn(w.page, `${base}/ui/`, s.rootToken);
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  /** Nothing ran and nothing was injected; each expected string is on the page as text. */
  const assertInert = async (expected: string[]) => {
    const text = await w.page.locator('main').innerText();
    for (const h of expected) expect(text, h).toContain(h);
    expect(await w.page.evaluate(() => (window as { __xss?: unknown }).__xss)).toBeUndefined();
    expect(await w.page.locator('main img, main script, main svg, main iframe').count()).toBe(0);
    // No link anywhere whose target came from data (the console has no data-driven href at all).
    const hrefs = await w.page.$$eval('a[href]', (as) => as.map((a) => a.getAttribute('href') ?? ''));
    for (const href of hrefs) expect(href).toMatch(/^#[a-z]+$/);
    expect(w.dialogs).toEqual([]);
  };

  it('task trees: identity names and labels', async () => {
    await w.page.click('[data-page="tasks"]');
    for (const id of taskIds) await w.page.locator(`[data-task-id="${id}"]`).waitFor();
    await assertInert([...HOSTILE.map((h, i) => `agent.h${i}=${h}`), ...HOSTILE.slice(0, 3)]);
    await w.page.screenshot({ path: join(SCREENSHOT_DIR, 'xss-tasks.png'), fullPage: true });
  });

  it('access requests: reasons', async () => {
    await w.page.click('[data-page="requests"]');
    await w.page.waitForSelector('[data-request-id]');
    await expect.poll(() => w.page.locator('[data-request-id]').count()).toBe(2);
    await assertInert([0, 1, 3, 4].map((i) => HOSTILE[i] as string));
    await w.page.screenshot({ path: join(SCREENSHOT_DIR, 'xss-requests.png'), fullPage: true });
  });

  it('audit trail: identity names, and a hostile search typed in', async () => {
    await w.page.click('[data-page="audit"]');
    await w.page.waitForSelector('[data-testid="audit-count"]');
    // The server's search matches an identity exactly: a JWT task's identity is `jwt:<iss>#<sub>`,
    // so the hostile text typed in is the whole identity around the hostile `sub`.
    await w.page.fill('input[name="identity"]', `jwt:${ISSUER}#${HOSTILE[0]}`);
    await w.page.click('form.search button[type="submit"]');
    await expect.poll(() => w.page.locator('table.audit tbody tr').count()).toBeGreaterThan(0);
    await w.page.fill('input[name="identity"]', '');
    await w.page.click('form.search button[type="submit"]');
    await expect.poll(async () => (await w.page.locator('main').innerText()).includes(HOSTILE[2] as string)).toBe(true);
    await assertInert(HOSTILE.slice(0, 3));
    await w.page.screenshot({ path: join(SCREENSHOT_DIR, 'xss-audit.png'), fullPage: true });
  });

  it('secrets: the path, and revealed values', async () => {
    await w.page.click('[data-page="secrets"]');
    await w.page.click('button[data-key="xss/"]');
    await w.page.click('button[data-key="onerror=alert,1"]');
    await w.page.click('[data-testid="reveal"]');
    await w.page.waitForSelector('[data-testid="secret-values"]');
    await assertInert(['kv/xss/onerror=alert,1', ...HOSTILE]);
    await w.page.screenshot({ path: join(SCREENSHOT_DIR, 'xss-secrets.png'), fullPage: true });
  });
});
