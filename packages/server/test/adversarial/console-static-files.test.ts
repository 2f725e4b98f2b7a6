import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureConsoleBuilt } from '../../../../test-support/console-build.js';
import { startTestServer, type TestServer } from '../test-server.js';
import { openEventStream, type WriteLog, watchWrites } from './adversarial-support.js';

// Attack class: the console's public routes and what the browser is allowed to do with them.
//
// `/ui` is answered without a token. It must serve only the files the build
// wrote (never a file named by the request), change nothing, and carry the
// policies that keep hostile text in the API's data from ever running in an
// operator's browser. The live task tree's events go to operators only.

describe('the console routes serve only the built console, under a strict policy', () => {
  let s: TestServer;
  let log: WriteLog;
  beforeAll(async () => {
    ensureConsoleBuilt();
    const watch = watchWrites();
    log = watch.log;
    s = await startTestServer('sqlite', { wrapStorage: watch.wrap });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('serves the page with the console CSP, nosniff and no-store, and its hashed assets cacheable, writing nothing', async () => {
    const writes = await log.during(async () => {
      const page = await s.call({ method: 'GET', url: '/ui/', token: null });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      const csp = String(page.headers['content-security-policy']);
      for (const directive of [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
      ])
        expect(csp).toContain(directive);
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
      expect(page.headers['x-content-type-options']).toBe('nosniff');
      expect(page.headers['cache-control']).toBe('no-store');
      // No inline script or style, and only relative asset URLs (a path prefix in front keeps working).
      expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(page.body).not.toMatch(/<style|style=/);
      const urls = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
      expect(urls.length).toBe(2);
      for (const url of urls) {
        expect(url).toMatch(/^assets\/app-[0-9a-f]{16}\.(js|css)$/);
        const asset = await s.call({ method: 'GET', url: `/ui/${url}`, token: null });
        expect(asset.statusCode, url).toBe(200);
        expect(asset.headers['cache-control']).toBe(`public, max-age=${365 * 24 * 3600}`);
        expect(asset.headers['x-content-type-options']).toBe('nosniff');
        expect(asset.headers['content-type']).toMatch(/^text\/(javascript|css)/);
      }
      // `/ui` sends the browser to `ui/`, relative, so a prefix is kept.
      const bare = await s.call({ method: 'GET', url: '/ui', token: null });
      expect(bare.statusCode).toBe(308);
      expect(bare.headers.location).toBe('ui/');
    });
    expect(writes).toEqual([]);
  });

  it('never serves a file the request names: traversal, encoded dots, other files and the page itself as an asset', async () => {
    for (const name of [
      '..%2F..%2Fpackage.json',
      '%2e%2e%2fbuild.mjs',
      '..%5c..%5cpackage.json',
      'index.html',
      'app-0000000000000000.js',
      'app-0000000000000000.js.map',
      '.env',
    ]) {
      const response = await s.call({ method: 'GET', url: `/ui/assets/${name}`, token: null });
      expect([400, 404], name).toContain(response.statusCode);
      expect(response.body, name).toMatch(/CUSTOS_ERR_/);
      expect(response.body).not.toMatch(/"name"\s*:|esbuild/);
      expect(response.headers['cache-control'], name).toBe('no-store');
    }
    for (const url of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/build.mjs', '/ui/index.html']) {
      const response = await s.call({ method: 'GET', url, token: null });
      expect(response.statusCode, url).toBe(404);
      expect(response.body, url).not.toMatch(/esbuild|"workspaces"/);
    }
  });

  it('every API response, errors included, carries nosniff and a policy that lets nothing load or run', async () => {
    for (const [url, token] of [
      ['/v1/sys/health', null],
      ['/v1/secrets/data/kv/%3Cscript%3Ealert(1)%3C%2Fscript%3E', undefined],
      ['/v1/no-such-route', null],
    ] as const) {
      const response = await s.call({ method: 'GET', url, ...(token === null ? { token: null } : {}) });
      expect(response.headers['x-content-type-options'], url).toBe('nosniff');
      expect(response.headers['content-security-policy'], url).toMatch(/^default-src 'none'; frame-ancestors 'none'/);
    }
  });

  it('task lifecycle events reach operators only: a task never hears of a sibling or of its own tree', async () => {
    await s.call({
      method: 'PUT',
      url: '/v1/policies/console-adv',
      payload: {
        policy: 'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    await s.call({
      method: 'PUT',
      url: '/v1/roles/console-adv',
      payload: { policies: ['console-adv'], max_ttl: '10m', max_depth: 3 },
    });
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(s.app.server.address() as AddressInfo).port}`;
    const start = async () =>
      (await s.call({ method: 'POST', url: '/v1/roles/console-adv/tasks', payload: {} })).json();
    const listener = await start();
    const task = await openEventStream(base, listener.token);
    const operator = await openEventStream(base, s.rootToken);
    const sibling = await start();
    const child = (
      await s.call({ method: 'POST', url: '/v1/tasks/delegate', token: listener.token, payload: { ttl: '1m' } })
    ).json();
    await s.call({ method: 'POST', url: `/v1/tasks/${sibling.task_id}/revoke` });
    await operator.until(`"task_id":"${sibling.task_id}"`);
    await operator.until('event: task.revoked');
    expect(operator.state.text).toContain(`"task_id":"${child.task_id}"`);
    task.stop();
    operator.stop();
    expect(task.state.text).not.toMatch(/task\.(created|ended|revoked)/);
    expect(task.state.text).not.toContain(sibling.task_id);
  });
});
