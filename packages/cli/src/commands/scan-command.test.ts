import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { registerScanCommand } from './scan-command.js';

const root = mkdtempSync(join(tmpdir(), 'custos-scan-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  process.exitCode = undefined;
});

const fakeKey = (): string =>
  `sk-proj-${Array.from({ length: 48 }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(Math.random() * 62)]).join('')}`;

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => {
    out += d;
  });
  stderr.on('data', (d) => {
    err += d;
  });
  const program = new Command('custos').exitOverride();
  registerScanCommand(program, { stdout, stderr, cwd: root, env: {} });
  process.exitCode = undefined;
  await program.parseAsync(['scan', ...args], { from: 'user' });
  return { code: Number(process.exitCode ?? 0), out, err };
}

describe('custos scan', () => {
  const key = fakeKey();
  writeFileSync(join(root, 'clean.txt'), 'nothing here\n');
  writeFileSync(join(root, 'leak.env'), `OPENAI_API_KEY=${key}\n`);
  writeFileSync(join(root, 'broken.gguf'), 'GGUF\x03\x00\x00\x00');

  it('exits 0 on a clean tree', async () => {
    const r = await run(['clean.txt']);
    expect(r.code).toBe(0);
  });

  it('exits 1 on findings and masks them; --show-secrets shows them', async () => {
    const r = await run(['.', '--exclude', 'broken.gguf']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('leak.env:1  openai-key  sk-p…');
    expect(r.out).not.toContain(key);
    expect((await run(['leak.env', '--show-secrets'])).out).toContain(key);
  });

  it('exits 2 when a file cannot be scanned and nothing is found, 1 when something is found elsewhere', async () => {
    expect((await run(['broken.gguf', 'clean.txt'])).code).toBe(2);
    expect((await run(['broken.gguf', 'leak.env'])).code).toBe(1);
  });

  it('emits SARIF and JSON', async () => {
    const sarif = JSON.parse((await run(['leak.env', '--format', 'sarif'])).out);
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.runs[0].results[0].ruleId).toBe('openai-key');
    const json = JSON.parse((await run(['leak.env', '--format', 'json'])).out);
    expect(json.findings[0].file).toBe('leak.env');
  });

  it('writes and applies a baseline', async () => {
    const b = join(root, 'baseline.json');
    expect((await run(['leak.env', '--write-baseline', b])).code).toBe(0);
    expect(readFileSync(b, 'utf8')).not.toContain(key);
    expect((await run(['leak.env', '--baseline', b])).code).toBe(0);
  });

  it('looks for known values from --secrets-file', async () => {
    writeFileSync(join(root, 'known.txt'), 'password: hunter2-but-longer\n');
    writeFileSync(join(root, 'secrets.env'), 'DB_PASSWORD=hunter2-but-longer\n');
    const r = await run(['known.txt', '--secrets-file', join(root, 'secrets.env')]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('known:DB_PASSWORD');
  });

  it('rejects a bad format and a missing vault token with exit 2', async () => {
    expect((await run(['clean.txt', '--format', 'xml'])).code).toBe(2);
    const r = await run(['clean.txt', '--against-vault']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('CUSTOS_TOKEN');
  });
});
