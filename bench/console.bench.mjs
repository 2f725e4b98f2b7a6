// Console first-load benchmark (issue 14): the bytes a browser downloads to
// show the console the first time — the page at /ui/ and every asset it
// references — fetched from a real custos dev server, each gzipped (level 6,
// what a reverse proxy in front would send; custos itself sends them as
// built), summed, and held against the 300 KB budget. The console is built
// first, as `npm ci` does.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fmt, root, startCustos } from './bench-lib.mjs';

const BUDGET_KB = 300;

execFileSync(process.execPath, ['build.mjs'], {
  cwd: join(root, 'packages/console'),
  stdio: ['ignore', 'ignore', 'inherit'],
});
const server = await startCustos();
const files = [];
try {
  const get = async (path) => {
    const r = await fetch(`${server.addr}${path}`);
    if (r.status !== 200) throw new Error(`${path}: ${r.status}`);
    return Buffer.from(await r.arrayBuffer());
  };
  const page = await get('/ui/');
  files.push({ name: 'index.html', bytes: page });
  // Everything the page loads: its script and stylesheet (relative URLs).
  for (const [, url] of page.toString('utf8').matchAll(/(?:src|href)="([^"]+)"/g)) {
    files.push({ name: url, bytes: await get(`/ui/${url}`) });
  }
} finally {
  await server.stop();
}

const rows = files.map(({ name, bytes }) => ({ name, raw: bytes.length, gzip: gzipSync(bytes, { level: 6 }).length }));
const total = rows.reduce((t, r) => ({ raw: t.raw + r.raw, gzip: t.gzip + r.gzip }), { raw: 0, gzip: 0 });
const kb = (n) => `${fmt(n / 1024, 1)} KB`;
const within = total.gzip <= BUDGET_KB * 1024;

console.log(`## Console first load (issue 14)

Every byte a browser fetches to show the console the first time (\`/ui/\` and the assets it references), fetched from a
custos dev server, each gzipped at level 6. Budget: ${BUDGET_KB} KB gzip. Sizes do not depend on the machine (it is
shared with other helpers; only the date matters here).

| File | raw | gzip |
| --- | ---: | ---: |
${rows.map((r) => `| \`${r.name.replace(/-[0-9a-f]{16}\./, '-<hash>.')}\` | ${kb(r.raw)} | ${kb(r.gzip)} |`).join('\n')}
| **total** | ${kb(total.raw)} | **${kb(total.gzip)}** (${within ? 'within' : 'OVER'} the ${BUDGET_KB} KB budget) |`);

if (!within) process.exitCode = 1;
