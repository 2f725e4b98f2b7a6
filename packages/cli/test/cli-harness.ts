import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { type RunningServer, resolveServerConfig, type ServerFlags, startServer } from '@custos/server';
import pino from 'pino';
import { runCli } from '../src/program.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in this process with `args`, capturing what it writes and its
 * exit code (process.exitCode is restored afterwards).
 */
export async function runCliCaptured(
  args: string[],
  options: { cwd: string; env: Record<string, string>; stdin?: string },
): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => {
    out += c;
  });
  stderr.on('data', (c) => {
    err += c;
  });
  const previousExit = process.exitCode;
  process.exitCode = undefined;
  const code = await runCli(args, {
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    stdout,
    stderr,
    cwd: options.cwd,
    env: options.env,
  });
  process.exitCode = previousExit;
  return { code, stdout: out, stderr: err };
}

/**
 * A real server (dev seal, SQLite) on a free port, and a way to run CLI
 * commands against it. `flags` adds server flags, e.g. `{ tlsListen: '127.0.0.1:0' }`
 * for the mTLS listener (then `server.tlsAddress`, CA in `<dir>/ca.pem`).
 */
export async function startCliServer(
  flags: Pick<ServerFlags, 'tlsListen' | 'proxyListen'> = {},
  /** A server configuration file to start with (written to `<dir>/custos.json`). */
  configFile?: Record<string, unknown>,
): Promise<{
  server: RunningServer;
  dir: string;
  rootToken: () => string;
  cli: (args: string[], options?: { token?: string; stdin?: string; env?: Record<string, string> }) => Promise<CliRun>;
  close: () => Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'custos-cli-test-'));
  // The suites' databases listen on loopback: allowed explicitly, as an operator would.
  const file = join(dir, 'custos.json');
  if (configFile) writeFileSync(file, JSON.stringify(configFile));
  const config = resolveServerConfig(
    {
      dev: true,
      data: dir,
      listen: '127.0.0.1:0',
      egressAllow: ['127.0.0.1'],
      ...flags,
      ...(configFile ? { config: file } : {}),
    },
    dir,
  );
  const server = await startServer(config, pino({ level: 'silent' }));
  const { readFileSync } = await import('node:fs');
  const rootToken = () => readFileSync(join(dir, 'root-token'), 'utf8').trim();
  return {
    server,
    dir,
    rootToken,
    cli: (args, options = {}) =>
      runCliCaptured(args, {
        cwd: dir,
        env: { CUSTOS_ADDR: server.address, CUSTOS_TOKEN: options.token ?? rootToken(), ...(options.env ?? {}) },
        ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
      }),
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
