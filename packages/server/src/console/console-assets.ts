import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One built file of the console, held in memory. */
export interface ConsoleAsset {
  readonly body: Buffer;
  readonly contentType: string;
}

/** The built console: its page and its content-hashed assets by file name. */
export interface ConsoleAssets {
  readonly index: ConsoleAsset;
  readonly assets: ReadonlyMap<string, ConsoleAsset>;
}

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/**
 * Where `@custos/console` puts its build: `packages/console/dist` beside this
 * package in the workspace, and `node_modules/@custos/console/dist` beside
 * `node_modules/@custos/server` once installed — the same relative path from
 * both `src/console/` and `dist/console/`.
 */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../../console/dist/', import.meta.url));

/**
 * Reads the built console into memory once, at start: a few hundred
 * kilobytes, served without touching the disk again, and only the files the
 * build wrote (`index.html` and `assets/app-<hash>.js|css`) — a request can
 * never name any other file. Undefined when the console was not built.
 */
export function loadConsoleAssets(dir: string = DEFAULT_CONSOLE_DIR): ConsoleAssets | undefined {
  const indexFile = join(dir, 'index.html');
  if (!existsSync(indexFile)) return undefined;
  const assets = new Map<string, ConsoleAsset>();
  const assetDir = join(dir, 'assets');
  for (const name of existsSync(assetDir) ? readdirSync(assetDir) : []) {
    const contentType = TYPES[name.slice(name.lastIndexOf('.') + 1)];
    if (contentType && CONSOLE_ASSET_NAME.test(name)) {
      assets.set(name, { body: readFileSync(join(assetDir, name)), contentType });
    }
  }
  return { index: { body: readFileSync(indexFile), contentType: 'text/html; charset=utf-8' }, assets };
}

/** The name of a built asset: content-hashed, so it may be cached for good. */
export const CONSOLE_ASSET_NAME = /^app-[0-9a-f]{16}\.(js|css)$/;
