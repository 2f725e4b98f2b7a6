import type { Readable, Writable } from 'node:stream';

/** The streams and environment a command uses; injectable for tests. */
export interface CliIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** The global `--timeout` as given, set by the program before a command runs (see request-timeout.ts). */
  requestTimeout?: string;
}

export const processIo = (): CliIo => ({
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});

/**
 * Exit codes of the `custos` command (documented in docs/cli.md):
 * 0 success; 1 the server refused or failed the request, or a check found
 * problems (audit verify, scan findings); 2 usage or local error (bad flags,
 * unreadable file, server unreachable); 3 the server did not answer within
 * the request timeout (a script may retry, or wait longer).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, timeout: 3 } as const;

/** A failure the CLI reports as one line: `custos: CODE message`. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
