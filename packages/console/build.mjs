// Builds the console into dist/: index.html, one JS bundle and one CSS file,
// their names carrying a content hash (the server may let browsers cache them
// for a year). Runs at install time (the root `prepare`), so nothing is
// fetched when the server runs, and no CDN is ever named.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');

const result = await build({
  entryPoints: [join(here, 'src/main.tsx')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  write: false,
  outdir: 'out',
  legalComments: 'none',
  logLevel: 'warning',
});

const hashed = (name, ext, text) => `${name}-${createHash('sha256').update(text).digest('hex').slice(0, 16)}.${ext}`;
const js = result.outputFiles.find((f) => f.path.endsWith('.js'))?.text ?? '';
const css = readFileSync(join(here, 'src/app.css'), 'utf8');
const jsName = hashed('app', 'js', js);
const cssName = hashed('app', 'css', css);

// Relative URLs only: behind a reverse proxy that mounts custos at a path
// prefix (/custos/ui/), the page still finds its assets. No inline script or
// style: the Content-Security-Policy forbids both.
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>custos console</title>
<link rel="stylesheet" href="assets/${cssName}">
<script type="module" src="assets/${jsName}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The custos console needs JavaScript.</noscript>
</body>
</html>
`;

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'assets'), { recursive: true });
writeFileSync(join(dist, 'assets', jsName), js);
writeFileSync(join(dist, 'assets', cssName), css);
writeFileSync(join(dist, 'index.html'), html);
console.log(`console built: dist/index.html, dist/assets/${jsName}, dist/assets/${cssName}`);
