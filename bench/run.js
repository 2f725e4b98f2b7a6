#!/usr/bin/env node
// Runs every benchmark in bench/*.bench.mjs (in name order, one at a time so
// they do not compete for the 2 cores). Each prints a Markdown section on
// stdout; it is kept in bench/results/<name>.md together with the machine it
// ran on, and BENCHMARKS.md is rebuilt from all kept results, so running one
// benchmark refreshes its own section and leaves the others as they were.
//   npm run bench              all benchmarks
//   npm run bench -- redact    only those whose file name contains "redact"
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const filter = process.argv[2] ?? '';

execFileSync('npx', ['tsc', '-b'], { cwd: root, stdio: 'inherit' });

const cpus = os.cpus();
const machine = [
  `- Date: ${new Date().toISOString()}`,
  `- CPU: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length} (${os.arch()})`,
  `- Memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
  `- OS: ${os.type()} ${os.release()}`,
  `- Node.js: ${process.version}`,
].join('\n');

const resultsDir = join(here, 'results');
mkdirSync(resultsDir, { recursive: true });
for (const file of readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs') && f.includes(filter))
  .sort()) {
  process.stderr.write(`\n== ${file}\n`);
  const run = spawnSync(process.execPath, ['--expose-gc', join(here, file)], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 2 ** 20,
  });
  const name = file.replace(/\.bench\.mjs$/, '');
  if (run.status !== 0) {
    process.stderr.write(`${file} failed with status ${run.status}\n`);
    process.exitCode = 1;
    continue; // keep the previous result rather than a failed one
  }
  writeFileSync(join(resultsDir, `${name}.md`), `${run.stdout.trim()}\n\nMachine for this section:\n\n${machine}\n`);
}

const kept = existsSync(resultsDir)
  ? readdirSync(resultsDir)
      .filter((f) => f.endsWith('.md'))
      .sort()
  : [];
const doc = `# Benchmarks

Written by \`npm run bench\` (\`npm run bench -- NAME\` reruns one). Each section was measured in one run on the machine it names.

${kept.map((f) => readFileSync(join(resultsDir, f), 'utf8').trim()).join('\n\n')}
`;
writeFileSync(join(root, 'BENCHMARKS.md'), doc);
process.stderr.write('\nwrote BENCHMARKS.md\n');
