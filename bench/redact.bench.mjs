// Redaction benchmark: throughput of @custos/redact on LLM-like text (10,000
// known secrets + all detectors, detectors alone, known secrets alone),
// compared in the same run with a naive replaceAll loop and with secretlint's
// recommended preset; then streaming latency per chunk and the hold-back.
// Text and secrets come from a seeded PRNG, so every run measures the same
// input. Prints one Markdown section on stdout.

import { createRedactor } from '@custos/redact';
import { lintSource } from '@secretlint/core';
import { creator as recommendPreset } from '@secretlint/secretlint-rule-preset-recommend';

let seed = 0x5eed;
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (a) => a[Math.floor(rand() * a.length)];
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const chars = (n, alphabet = ALNUM) => {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
};

// --- input -----------------------------------------------------------------
const WORDS = (
  'the agent request response error token tokens model prompt function call tool result value key secret ' +
  'retry upstream config deploy service database query user password header server client stream chunk ' +
  'because when then this that with from into about explain should would could check return status code ' +
  'json object array string number true false null async await const let import export default timeout'
).split(' ');
const known = Array.from({ length: 10_000 }, (_, i) => ({
  name: `secret-${i}`,
  value: chars(16 + (i % 25), `${ALNUM}-_.!`),
}));
function paragraph() {
  const kind = rand();
  if (kind < 0.6) {
    let s = '';
    const n = 20 + Math.floor(rand() * 60);
    for (let i = 0; i < n; i++) s += `${pick(WORDS)}${rand() < 0.08 ? ', ' : ' '}`;
    return `${s.trim()}.\n\n`;
  }
  if (kind < 0.8) {
    return `\`\`\`ts\nconst ${pick(WORDS)} = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' } });\nif (!res.ok) throw new Error(\`status \${res.status}\`);\n\`\`\`\n\n`;
  }
  return `{"level":30,"time":${1_700_000_000_000 + Math.floor(rand() * 1e9)},"msg":"${pick(WORDS)} ${pick(WORDS)}","requestId":"${chars(8, '0123456789abcdef')}-${chars(4, '0123456789abcdef')}","durationMs":${Math.floor(rand() * 900)}}\n`;
}
function secretLine() {
  const s = pick(known).value;
  return pick([
    () => `The request failed; I used ${s} as the key.\n`,
    () => `Authorization: Basic ${Buffer.from(`svc:${s}`).toString('base64')}\n`,
    () => `export GITHUB_TOKEN=ghp_${chars(36)}\n`,
    () => `aws_access_key_id = AKIA${chars(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}\n`,
    () => `DATABASE_URL=postgres://app:${chars(18)}@db:5432/app\n`,
  ])();
}
function makeText(bytes) {
  let s = '';
  while (s.length < bytes) s += rand() < 0.05 ? secretLine() : paragraph();
  return s.slice(0, bytes);
}
const MB = 2 ** 20;
// Flattened, as text read from a file or a socket is; a string built by
// thousands of `+=` is a rope that every scanner (ours, regexes, secretlint)
// would pay to walk.
const text = Buffer.from(makeText(4 * MB), 'utf8').toString('utf8');
const small = text.slice(0, MB / 4);

// --- helpers ---------------------------------------------------------------
// Time is this process's CPU time (user + system), not wall time: the figure
// asked for is one core's throughput, and CPU time is not inflated when other
// work shares the machine.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
function throughput(fn, input, minMs = 1500) {
  fn(input); // warm-up (JIT)
  let runs = 0;
  const t0 = cpuMs();
  let elapsed = 0;
  while (elapsed < minMs && runs < 50) {
    fn(input);
    runs++;
    elapsed = cpuMs() - t0;
  }
  return (input.length * runs) / MB / (elapsed / 1000);
}
const fmt = (x, d = 1) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

// --- redactors --------------------------------------------------------------
globalThis.gc?.();
const t0 = performance.now();
const full = createRedactor({ secrets: known });
const buildMs = performance.now() - t0;
const detectorsOnly = createRedactor();
const knownOnly = createRedactor({ secrets: known, detectors: 'none' });

const rows = [];
// Calibration: one pass reading every character, the floor any scanner pays.
let _sink = 0;
const onePass = (t) => {
  let x = 0;
  for (let i = 0; i < t.length; i++) x = (x + t.charCodeAt(i)) | 0;
  _sink ^= x;
};
rows.push(['reference: one `charCodeAt` pass, no matching (machine ceiling)', throughput(onePass, text), text.length]);
rows.push(['custos: 10,000 known secrets + all detectors', throughput((t) => full.redact(t), text), text.length]);
rows.push(['custos: all detectors, no known secrets', throughput((t) => detectorsOnly.redact(t), text), text.length]);
rows.push(['custos: 10,000 known secrets, no detectors', throughput((t) => knownOnly.redact(t), text), text.length]);
const naive = (t) => {
  let out = t;
  for (const s of known) out = out.replaceAll(s.value, `[REDACTED:${s.name}]`);
  return out;
};
rows.push(['naive `replaceAll` per secret (raw values only)', throughput(naive, small, 3000), small.length]);

const secretlintConfig = { rules: [{ id: '@secretlint/secretlint-rule-preset-recommend', rule: recommendPreset }] };
const lint = (content) =>
  lintSource({
    source: { filePath: '/bench/input.txt', content, contentType: 'text' },
    options: { config: secretlintConfig, noPhysicFilePath: true },
  });
await lint(small);
let lintRuns = 0;
const l0 = cpuMs();
while (cpuMs() - l0 < 3000 && lintRuns < 20) {
  await lint(small);
  lintRuns++;
}
rows.push([
  'secretlint 12, recommended preset (detectors only)',
  (small.length * lintRuns) / MB / ((cpuMs() - l0) / 1000),
  small.length,
]);

// Sanity: the fast path finds what the naive loop finds.
const sample = text.slice(0, 200_000);
const naiveHits = known.filter((s) => sample.includes(s.value)).length;
const fastHits = new Set(knownOnly.findAll(sample).map((f) => f.ruleId)).size;

// --- streaming --------------------------------------------------------------
const streamText = text.slice(0, 256 * 1024);
const expected = full.redact(streamText);
const streamRows = [];
for (const size of [1, 4, 16, 64, 1024]) {
  const chunks = [];
  for (let i = 0; i < streamText.length; i += size) chunks.push(streamText.slice(i, i + size));
  const run = () => {
    const s = full.createStream();
    let out = '';
    for (const c of chunks) out += s.write(c);
    out += s.end();
    return { out, maxHeld: s.maxHeld };
  };
  run();
  const s0 = cpuMs();
  const { out, maxHeld } = run();
  const ms = cpuMs() - s0;
  if (out !== expected) throw new Error(`stream output differs from whole-text output at chunk size ${size}`);
  streamRows.push([size, chunks.length, (ms * 1000) / chunks.length, streamText.length / MB / (ms / 1000), maxHeld]);
}

// --- adversarial inputs: time against size (the unit tests count the work) ---
// Each input is a long run of something a pattern partly accepts; linear
// redaction takes about 4x as long on 4x the input, quadratic 16x or more.
const adversarial = {
  letters: (n) => 'a'.repeat(n),
  'keyword runs': (n) => 'ghp_sk-AKIAeyJglpat-xoxb-'.repeat(n / 25),
  assignments: (n) => 'password='.repeat(n / 9),
  'unterminated PEM': (n) => `-----BEGIN PRIVATE KEY-----${'A'.repeat(n)}`,
  'PEM headers': (n) => '-----BEGIN RSA PRIVATE KEY-----\n'.repeat(n / 32),
  authorization: (n) => 'Authorization: Bearer '.repeat(n / 22),
  'jwt-ish': (n) => `eyJ${'a'.repeat(n / 2)}.eyJ${'a'.repeat(n / 2)}`,
  'db urls': (n) => 'postgres://u:'.repeat(n / 13),
  base64: (n) => 'QUJD'.repeat(n / 4),
  azure: (n) => 'abc1Q~'.repeat(n / 6),
  'slack digits': (n) => `xoxb-${'1'.repeat(n)}`,
  'db scheme suffix': (n) => `postgres+${'a'.repeat(n)}`,
  'PEM label run': (n) => `-----BEGIN ${'A '.repeat(n / 2)}`,
};
const bestMs = (text) => {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    const t0 = cpuMs();
    detectorsOnly.redact(text);
    best = Math.min(best, cpuMs() - t0);
  }
  return best;
};
const adversarialRows = Object.entries(adversarial).map(([name, make]) => {
  bestMs(make(100_000));
  const small = bestMs(make(100_000));
  const large = bestMs(make(400_000));
  return [name, small, large];
});

// --- report -----------------------------------------------------------------
const full10k = rows[1][1];
const target = full10k >= 100 ? 'met' : 'not met';
console.log(`## Redaction (@custos/redact)

Input: ${fmt(text.length / MB)} MiB of generated LLM-like text (prose, code, JSON log lines; about one
credential-bearing line per 20 paragraphs), seeded, so every run measures the same bytes. 10,000 known
secrets (16–40 characters) are registered in all their encoded forms (${full.knownForms.toLocaleString('en-US')} patterns,
built in ${fmt(buildMs, 0)} ms). One core, single-threaded; MB/s = MiB of input per second of this process's CPU\ntime, over ≥1.5 s of repeated runs after a warm-up. The first row calibrates the machine.

| redactor | input | MB/s |
|---|---:|---:|
${rows.map(([name, mbps, len]) => `| ${name} | ${fmt(len / MB, 2)} MiB | ${fmt(mbps)} |`).join('\n')}

Target ≥ 100 MB/s with 10,000 known secrets and all detectors: **${target}** (${fmt(full10k)} MB/s).
Cross-check on the first 200 kB: the naive loop finds ${naiveHits} distinct raw secrets, the matcher ${fastHits}
(it also finds their base64/hex/URL forms, which the naive loop cannot).

### Streaming (10,000 known secrets + all detectors, 256 KiB)

Output was checked equal to whole-text redaction for every chunk size.

| chunk size (chars) | chunks | added latency per chunk (µs) | MB/s | most characters held back |
|---:|---:|---:|---:|---:|
${streamRows.map(([size, n, us, mbps, held]) => `| ${size} | ${n.toLocaleString('en-US')} | ${fmt(us, 2)} | ${fmt(mbps)} | ${held} |`).join('\n')}

### Adversarial inputs (all detectors, no known secrets)

Long runs of what a pattern partly accepts, at 100,000 and 400,000 characters (best of 5, CPU time).
Linear is about 4x; the unit tests check the same inputs by counting regex runs, and that no run can
examine more than a bounded stretch of text but where reviewed.

| input | 100 k chars (ms) | 400 k chars (ms) | ratio |
|---|---:|---:|---:|
${adversarialRows.map(([name, small, large]) => `| ${name} | ${fmt(small, 2)} | ${fmt(large, 2)} | ${fmt(large / Math.max(small, 0.01), 1)} |`).join('\n')}`);
