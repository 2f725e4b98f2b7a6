import { existsSync, mkdirSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Debian's `chromium` package (`.ci/run` installs it when missing). */
export const CHROMIUM = process.env.CUSTOS_CHROMIUM ?? '/usr/bin/chromium';

/** Where the browser tests write their screenshots (gitignored): test-output/console/*.png at the repository root. */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../../../test-output/console/', import.meta.url));

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium package (.ci/run does).`);
  }
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A page plus what it must never do: open a dialog, throw, or trip the CSP. */
export interface WatchedPage {
  page: Page;
  /** Dialogs (alert/confirm/prompt) the page opened: an executed injection would show up here. */
  dialogs: string[];
  /** Uncaught page errors and console errors (CSP violations are reported there). */
  errors: string[];
}

export async function openPage(browser: Browser): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const watched: WatchedPage = { page, dialogs: [], errors: [] };
  page.on('dialog', (dialog) => {
    watched.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => watched.errors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') watched.errors.push(message.text());
  });
  return watched;
}

/**
 * A tiny reverse proxy that mounts custos under `prefix` (`/custos/`), as
 * nginx or a Kubernetes ingress would: it strips the prefix and streams both
 * ways (the event stream included). Anything outside the prefix is a 404.
 */
export async function startPrefixProxy(
  target: string,
  prefix: string,
): Promise<{ url: string; close: () => Promise<void> }> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    if (!req.url?.startsWith(prefix)) {
      res.writeHead(404).end('not under the prefix');
      return;
    }
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: `/${req.url.slice(prefix.length)}`,
        headers: { ...req.headers, host: upstream.host },
      },
      (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
    res.on('close', () => forward.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${prefix}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Signs in on the console at `url` with an operator token, and waits for the navigation bar. */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.fill('input[name="token"]', token);
  await page.click('button[type="submit"]');
  await page.waitForSelector('header nav');
}
