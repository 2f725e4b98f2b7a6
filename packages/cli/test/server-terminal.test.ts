import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// `custos server` as a person at a terminal meets it: under a pseudo-terminal
// made by util-linux `script` (no native dependency), and, for contrast, with
// stdout a pipe as a log collector has it.

const bin = join(import.meta.dirname, '../bin/custos.js');
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasScript) {
  const why = 'the terminal test needs `script` (util-linux) to make a pseudo-terminal';
  if (process.env.CI === 'true') throw new Error(`${why}, and CI=true forbids skipping it`);
  console.warn(`\n!!! SKIPPED: ${why} !!!\n`);
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

interface Run {
  output: string;
  port: number;
  dir: string;
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts the server (under a terminal or not), waits for "custos listening"
 * (bounded), stops it with SIGTERM and returns everything it printed.
 */
async function runServer(options: { terminal: boolean; args?: string[] }): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'custos-terminal-'));
  dirs.push(dir);
  const port = await freePort();
  const argv = [bin, 'server', '--dev', '--listen', `127.0.0.1:${port}`, ...(options.args ?? [])];
  // cwd is the test directory, as `npm start` runs in the checkout: the data goes to ./.custos.
  const env = { ...process.env, NO_COLOR: '' };
  delete env.npm_lifecycle_event;
  let child: ChildProcess;
  if (options.terminal) {
    // `exec` so that SIGTERM to script's child reaches the server itself.
    const command = ['exec', process.execPath, ...argv].join(' ');
    child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
  } else {
    child = spawn(process.execPath, argv, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  let output = '';
  child.stdout!.on('data', (c) => {
    output += c;
  });
  child.stderr!.on('data', (c) => {
    output += c;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 300 && !output.includes('custos listening'); i++) await new Promise((r) => setTimeout(r, 50));
  const health = await fetch(`http://127.0.0.1:${port}/v1/sys/health`).then((r) => r.status);
  expect(health).toBe(200);
  if (options.terminal) {
    // The server is script's child (exec'd): stop it as Ctrl-C would, not script.
    const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
    process.kill(Number(children.split(' ')[0]), 'SIGTERM');
  } else {
    child.kill('SIGTERM');
  }
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  // A pseudo-terminal turns \n into \r\n.
  return { output: output.replace(/\r\n/g, '\n'), port, dir };
}

const rootToken = (run: Run) => readFileSync(join(run.dir, '.custos', 'root-token'), 'utf8').trim();
const lines = (run: Run) => run.output.split('\n').filter((l) => l.trim().length > 0);

describe.skipIf(!hasScript)('custos server at a terminal', () => {
  it('prints a banner (address, token file, export lines, next command) and readable log lines — never the token', async () => {
    const run = await runServer({ terminal: true });
    const addr = `http://127.0.0.1:${run.port}`;
    expect(run.output).toContain(`custos 0.1.0 is listening on ${addr}`);
    expect(run.output).toContain('Root token:  ./.custos/root-token');
    expect(run.output).toContain(`export CUSTOS_ADDR=${addr}`);
    expect(run.output).toContain(`export CUSTOS_TOKEN="$(cat ${join(run.dir, '.custos', 'root-token')})"`);
    expect(run.output).toContain('custos secret put kv/hello greeting=world');
    // Readable lines, coloured at the terminal; no JSON.
    expect(run.output).toMatch(/\d\d:\d\d:\d\d\.\d{3} \u001b\[32mINFO \u001b\[0m custos listening {2}address=/);
    expect(run.output).toMatch(/INFO .* shutting down {2}signal=SIGTERM/);
    expect(lines(run).some((l) => l.startsWith('{'))).toBe(false);
    expect(run.output).not.toContain(rootToken(run));
  });

  it('--log-format json at a terminal: JSON lines and no banner', async () => {
    const run = await runServer({ terminal: true, args: ['--log-format', 'json'] });
    const entries = lines(run).map((l) => JSON.parse(l) as { msg: string });
    expect(entries.map((e) => e.msg)).toContain('custos listening');
    expect(run.output).not.toContain('export CUSTOS_ADDR');
    expect(run.output).not.toContain(rootToken(run));
  });
});

describe('custos server with stdout not a terminal', () => {
  it('writes JSON lines only, no banner', async () => {
    const run = await runServer({ terminal: false });
    const entries = lines(run).map((l) => JSON.parse(l) as { msg: string });
    expect(entries.map((e) => e.msg)).toEqual(expect.arrayContaining(['custos listening', 'shutting down']));
    expect(run.output).not.toContain('export CUSTOS_ADDR');
    expect(run.output).not.toContain(rootToken(run));
  });

  it('refuses an unknown --log-format with a clear error, before starting anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-terminal-'));
    dirs.push(dir);
    const out = spawn(process.execPath, [bin, 'server', '--dev', '--log-format', 'xml'], { cwd: dir, stdio: 'pipe' });
    let stderr = '';
    out.stderr.on('data', (c) => {
      stderr += c;
    });
    const code = await new Promise<number | null>((resolve) => out.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/^custos: CUSTOS_ERR_VALIDATION .*--log-format is json or pretty/);
  });
});
