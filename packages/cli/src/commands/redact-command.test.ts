import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { registerRedactCommand } from './redact-command.js';

const rand = (n: number): string => {
  const a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < n; i++) s += a[Math.floor(Math.random() * a.length)];
  return s;
};

function sink(): { stream: Writable; text: () => string } {
  const parts: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      parts.push(String(chunk));
      cb();
    },
  });
  return { stream, text: () => parts.join('') };
}

async function run(argv: string[], input: string | string[] = ''): Promise<{ out: string; err: string; code: number }> {
  const stdin = new PassThrough();
  const stdout = sink();
  const stderr = sink();
  const program = new Command().exitOverride();
  registerRedactCommand(program, { stdin, stdout: stdout.stream, stderr: stderr.stream });
  const done = program.parseAsync(['redact', ...argv], { from: 'user' });
  for (const piece of Array.isArray(input) ? input : [input]) stdin.write(piece);
  stdin.end();
  await done;
  const code = process.exitCode ?? 0;
  return { out: stdout.text(), err: stderr.text(), code: typeof code === 'number' ? code : Number(code) };
}

const dir = mkdtempSync(join(tmpdir(), 'custos-redact-'));
afterEach(() => {
  process.exitCode = undefined;
});

describe('custos redact', () => {
  it('filters stdin to stdout, with a secret split across chunks', async () => {
    const value = `pw-${rand(20)}`;
    const file = join(dir, 'secrets.txt');
    writeFileSync(file, `# task secrets\nDB_PASSWORD="${value}"\n`);
    const gh = `ghp_${rand(36)}`; // wrong checksum on purpose: not a detector hit
    const text = `connecting with ${value}\nAuthorization: Bearer ${rand(32)}\n${gh}\n`;
    const cut = text.indexOf(value) + 5;
    const { out, err, code } = await run(['--secrets-file', file], [text.slice(0, cut), text.slice(cut)]);
    expect(code).toBe(0);
    expect(err).toBe('');
    expect(out).toContain('connecting with [REDACTED:DB_PASSWORD]');
    expect(out).toContain('Authorization: Bearer [REDACTED:authorization-header]');
    expect(out).not.toContain(value);
  });

  it('writes output as input arrives, before stdin ends', async () => {
    const stdin = new PassThrough();
    const stdout = sink();
    const program = new Command().exitOverride();
    registerRedactCommand(program, { stdin, stdout: stdout.stream, stderr: sink().stream });
    const done = program.parseAsync(['redact'], { from: 'user' });
    stdin.write('first line of agent output\n');
    for (let i = 0; i < 50 && stdout.text() === ''; i++) await new Promise((r) => setTimeout(r, 10));
    expect(stdout.text()).toBe('first line of agent output\n');
    stdin.end('done\n');
    await done;
    expect(stdout.text()).toBe('first line of agent output\ndone\n');
  });

  it('reads files in order', async () => {
    const a = join(dir, 'a.log');
    const b = join(dir, 'b.log');
    const key = `AKIA${rand(16)
      .toUpperCase()
      .replace(/[0189]/g, 'Q')}`;
    writeFileSync(a, `first ${key}\n`);
    writeFileSync(b, 'second\n');
    const { out, code } = await run([a, b]);
    expect(code).toBe(0);
    expect(out).toBe('first [REDACTED:aws-access-key-id]\nsecond\n');
  });

  it('--json redacts JSON lines and documents structurally', async () => {
    const value = `pw-${rand(20)}`;
    const file = join(dir, 'secrets.json');
    writeFileSync(file, JSON.stringify({ api: value }));
    const input = `{"msg":"using ${value}","password":"x","n":1}\nnot json ${value}\n{\n  "token": "abc"\n}\n`;
    const { out, code } = await run(['--json', '--secrets-file', file], input);
    expect(code).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(JSON.parse(lines[0]!)).toEqual({ msg: 'using [REDACTED:api]', password: '[REDACTED:password]', n: 1 });
    expect(lines[1]).toBe('not json [REDACTED:api]');
    expect(JSON.parse(lines[2]!)).toEqual({ token: '[REDACTED:token]' });
  });

  it('exits 2 with one line on stderr when a file cannot be read', async () => {
    const { out, err, code } = await run([join(dir, 'missing.log')]);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toMatch(/^custos: CUSTOS_ERR_LOCAL cannot read .*missing\.log \(ENOENT\)\n$/);
  });

  it('exits 2 when the secrets file cannot be read, without echoing content', async () => {
    const { err, code } = await run(['--secrets-file', join(dir, 'nope')]);
    expect(code).toBe(2);
    expect(err.split('\n')).toHaveLength(2);
    expect(err).toMatch(/^custos: CUSTOS_ERR_LOCAL cannot read secrets file/);
  });
});
