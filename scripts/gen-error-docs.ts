// Regenerates the catalogue table in docs/errors.md from the error catalogue:
//   npx vite-node scripts/gen-error-docs.ts   (or: npm run docs:errors)
// The prose around the table is kept; a test fails when the two disagree.
import { readFileSync, writeFileSync } from 'node:fs';
import { ERROR_CATALOGUE } from '../packages/core/src/errors/error-catalogue.js';

const file = new URL('../docs/errors.md', import.meta.url);
const doc = readFileSync(file, 'utf8');
const begin = '<!-- catalogue:begin -->';
const end = '<!-- catalogue:end -->';
const rows = Object.entries(ERROR_CATALOGUE).map(
  ([code, { status, message }]) => `| \`${code}\` | ${status} | ${message} |`,
);
const table = ['| Code | HTTP | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
const start = doc.indexOf(begin);
const stop = doc.indexOf(end);
if (start === -1 || stop === -1) throw new Error('docs/errors.md lacks the catalogue markers');
writeFileSync(file, `${doc.slice(0, start + begin.length)}\n${table}\n${doc.slice(stop)}`);
