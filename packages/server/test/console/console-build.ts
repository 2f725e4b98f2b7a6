import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const consoleDir = fileURLToPath(new URL('../../../console/', import.meta.url));

/**
 * Builds the console when its dist/ is missing (a checkout where `npm ci`
 * ran before the console existed, or dist/ was cleaned): the tests then
 * run against a real build, never skip.
 */
export function ensureConsoleBuilt(): void {
  if (existsSync(`${consoleDir}dist/index.html`)) return;
  execFileSync(process.execPath, ['build.mjs'], { cwd: consoleDir, stdio: 'inherit' });
}
