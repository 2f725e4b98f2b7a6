import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const consoleDir = fileURLToPath(new URL('../packages/console/', import.meta.url));

/**
 * Builds the console when its dist/ is missing (a checkout where `npm ci`
 * ran before the console existed, or dist/ was cleaned): the tests that
 * serve it run against a real build and never skip.
 */
export function ensureConsoleBuilt(): void {
  if (!existsSync(`${consoleDir}dist/index.html`)) buildConsole();
}

const buildConsole = () => execFileSync(process.execPath, ['build.mjs'], { cwd: consoleDir, stdio: 'ignore' });

/**
 * vitest global setup: builds the console from its sources once, before any
 * test file runs (as the other packages are tested from their sources, the
 * console is never a stale build), so parallel test files never build it at
 * the same time. esbuild takes well under a second.
 */
export default function setup(): void {
  buildConsole();
}
