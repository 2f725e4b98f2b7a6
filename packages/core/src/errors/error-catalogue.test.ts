import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, ERROR_CODES } from './error-catalogue.js';

const root = join(import.meta.dirname, '../../../..');
const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');
const serverSection = doc.slice(doc.indexOf('<!-- catalogue:begin -->'), doc.indexOf('<!-- catalogue:end -->'));
const cliSection = doc.slice(doc.indexOf('## CLI-only codes'));
const documented = (text: string) =>
  new Map([...text.matchAll(/\| `(CUSTOS_ERR_[A-Z_]+)` \| (\d+) \|/g)].map((m) => [m[1] as string, Number(m[2])]));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.ts$/.test(name) && !name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('the error catalogue', () => {
  it('documents every code with its status, and nothing more (run `npm run docs:errors` after a change)', () => {
    const docs = documented(serverSection);
    expect([...docs.keys()].sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ERROR_CODES) expect(docs.get(code), code).toBe(ERROR_CATALOGUE[code].status);
  });

  it('no source file uses a code that is neither catalogued nor a documented CLI-only code', () => {
    const cliOnly = documented(cliSection);
    const used = new Set<string>();
    for (const file of sourceFiles(join(root, 'packages'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/CUSTOS_ERR_[A-Z_]+/g)) used.add(m[0]);
    }
    const unknown = [...used].filter((code) => !(code in ERROR_CATALOGUE) && !cliOnly.has(code) && !code.endsWith('_'));
    expect(unknown).toEqual([]);
  });
});
