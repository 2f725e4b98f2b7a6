import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { createRedactor, parseSecretsFile, type Redactor } from '@custos/redact';
import { fetchVaultFingerprints, reportVaultMatches, type VaultFingerprints } from '@custos/scan';
import type { Command } from 'commander';
import { CliError } from '../cli-io.js';
import { resolveRequestTimeout, withRequestTimeout } from '../request-timeout.js';
import { RedactVaultWatch } from './redact-vault-watch.js';

/** Streams the redact command reads and writes; injectable for tests. */
export interface RedactCommandIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** For `--against-vault`: `CUSTOS_ADDR`, `CUSTOS_TOKEN`, `CUSTOS_TIMEOUT` (default: the process's). */
  env?: NodeJS.ProcessEnv;
  /** The global `--timeout` (see request-timeout.ts). */
  requestTimeout?: string;
}

interface RedactFlags {
  secretsFile?: string;
  json?: boolean;
  againstVault?: boolean;
}

/** A local failure: one line on stderr, exit code 2. Messages never hold file content. */
class RedactCommandError extends Error {
  constructor(
    readonly code: 'CUSTOS_ERR_USAGE' | 'CUSTOS_ERR_LOCAL',
    message: string,
  ) {
    super(message);
  }
}

/**
 * `custos redact [FILE…] [--secrets-file F] [--json]`: a stream filter.
 * Reads stdin (or the files, in order) and writes it redacted to stdout as it
 * arrives, so `some-agent 2>&1 | custos redact` shows output live, holding
 * back only text that could still be the start of a secret.
 *
 * Exit codes: 0 done; 2 a usage or I/O error, reported as one line
 * `custos: CUSTOS_ERR_… message` on stderr. Sets `process.exitCode`.
 */
export function registerRedactCommand(
  program: Command,
  io: RedactCommandIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): void {
  program
    .command('redact [files...]')
    .description('redact secrets from stdin (or files) to stdout, as a stream filter')
    .option('--secrets-file <file>', 'known secrets: one per line, NAME=value lines, or JSON')
    .option('--json', 'input is JSON lines or a JSON document: redact structurally (secret-named keys masked)')
    .option('--against-vault', 'report stored secrets seen in the input, by keyed hash (CUSTOS_ADDR, CUSTOS_TOKEN)')
    .action(async (files: string[] | undefined, flags: RedactFlags) => {
      try {
        await runRedact(files ?? [], flags, io);
        process.exitCode = 0;
      } catch (e) {
        const err =
          e instanceof RedactCommandError
            ? e
            : e instanceof CliError
              ? new RedactCommandError(
                  e.code === 'CUSTOS_ERR_USAGE' ? 'CUSTOS_ERR_USAGE' : 'CUSTOS_ERR_LOCAL',
                  e.message,
                )
              : new RedactCommandError('CUSTOS_ERR_LOCAL', `redaction failed: ${(e as Error)?.message ?? String(e)}`);
        io.stderr.write(`custos: ${err.code} ${err.message}\n`);
        process.exitCode = 2;
      }
    });
}

async function runRedact(files: string[], flags: RedactFlags, io: RedactCommandIo): Promise<void> {
  // EPIPE and the like surface as 'error' on stdout; without a listener Node
  // would throw. The next write notices the stream is gone and stops.
  const ignore = (): void => {};
  io.stdout.on('error', ignore);
  try {
    await redactAll(files, flags, io);
  } catch (e) {
    if (!(e instanceof OutputClosed)) throw e;
  } finally {
    io.stdout.off('error', ignore);
  }
}

async function redactAll(files: string[], flags: RedactFlags, io: RedactCommandIo): Promise<void> {
  let secrets: { name: string; value: string }[] = [];
  if (flags.secretsFile !== undefined) {
    let text: string;
    try {
      text = await readFile(flags.secretsFile, 'utf8');
    } catch (e) {
      throw new RedactCommandError(
        'CUSTOS_ERR_LOCAL',
        `cannot read secrets file ${flags.secretsFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    secrets = parseSecretsFile(text);
  }
  const redactor = createRedactor({ secrets });
  const vault = flags.againstVault ? await vaultWatch(redactor, io) : undefined;
  const sources: (() => Readable)[] =
    files.length === 0 || (files.length === 1 && files[0] === '-')
      ? [() => io.stdin]
      : files.map((f) => () => (f === '-' ? io.stdin : createReadStream(f)));
  for (let i = 0; i < sources.length; i++) {
    const name = files[i] ?? 'stdin';
    try {
      await (flags.json ? pumpJson : pumpText)(sources[i]!(), redactor, io.stdout, vault?.watch);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === undefined) throw e;
      throw new RedactCommandError('CUSTOS_ERR_LOCAL', `cannot read ${name} (${code})`);
    }
  }
  await vault?.finish();
}

/**
 * `--against-vault`: fetches the fingerprints of the secrets the token may
 * read, then reports each one seen in the input (`POST /v1/scan/matches`)
 * as soon as it is seen. A report that fails is one line on stderr at the
 * end; the redacted output is unaffected either way.
 */
async function vaultWatch(
  redactor: Redactor,
  io: RedactCommandIo,
): Promise<{ watch: RedactVaultWatch; finish: () => Promise<void> }> {
  const env = io.env ?? process.env;
  const token = env.CUSTOS_TOKEN;
  if (!token) throw new RedactCommandError('CUSTOS_ERR_USAGE', '--against-vault needs CUSTOS_TOKEN');
  const addr = env.CUSTOS_ADDR ?? 'http://127.0.0.1:8420';
  const timeoutMs = resolveRequestTimeout({ env, requestTimeout: io.requestTimeout });
  let fingerprints: VaultFingerprints;
  try {
    fingerprints = await withRequestTimeout(addr, timeoutMs, (signal) =>
      fetchVaultFingerprints({ addr, token, fetch: (url, init) => fetch(url, { ...init, signal }) }),
    );
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new RedactCommandError('CUSTOS_ERR_LOCAL', (e as Error).message);
  }
  const reports: Promise<unknown>[] = [];
  let failed = 0;
  const watch = new RedactVaultWatch(redactor, fingerprints, (match) => {
    reports.push(
      withRequestTimeout(addr, timeoutMs, (signal) =>
        reportVaultMatches({
          addr,
          token,
          source: 'redact',
          matches: [match],
          fetch: (url, init) => fetch(url, { ...init, signal }),
        }),
      ).catch(() => {
        failed++;
      }),
    );
  });
  return {
    watch,
    finish: async () => {
      watch.end();
      await Promise.all(reports);
      if (failed > 0) io.stderr.write(`custos: CUSTOS_ERR_LOCAL ${failed} stored-secret report(s) could not be sent\n`);
    },
  };
}

/** The reader went away (`custos redact | head`): stop quietly, like `cat`. */
class OutputClosed extends Error {}

/** Writes respecting backpressure, so a slow reader does not make us buffer everything. */
async function write(out: Writable, text: string): Promise<void> {
  if (out.destroyed || out.writableEnded) throw new OutputClosed();
  if (text.length === 0) return;
  if (!out.write(text)) {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        out.off('drain', done);
        out.off('error', done);
        out.off('close', done);
        resolve();
      };
      out.once('drain', done);
      out.once('error', done);
      out.once('close', done);
    });
  }
}

async function pumpText(input: Readable, redactor: Redactor, out: Writable, tap?: RedactVaultWatch): Promise<void> {
  const stream = redactor.createStream();
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of input) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
    tap?.write(text);
    await write(out, stream.write(text));
  }
  const rest = decoder.decode();
  tap?.write(rest);
  await write(out, stream.write(rest) + stream.end());
}

/** Largest multi-line JSON document held while waiting for it to parse. */
const MAX_PENDING = 16 * 2 ** 20;

/**
 * JSON lines, or a (possibly pretty-printed) JSON document: each value is
 * redacted structurally and written as one line. Text that is not JSON is
 * still redacted, as text, so nothing passes through unscanned.
 */
async function pumpJson(input: Readable, redactor: Redactor, out: Writable, tap?: RedactVaultWatch): Promise<void> {
  const decoder = new TextDecoder('utf-8');
  let partial = '';
  let pending = '';
  const structured = (value: unknown): string => `${JSON.stringify(redactor.redactObject(value))}\n`;
  const emitLine = async (line: string): Promise<void> => {
    const alone = /^\s*[[{]/.test(line) ? parse(line) : { ok: false as const };
    if (alone.ok) {
      // A complete document on one line ends whatever did not parse before it.
      if (pending !== '') await write(out, redactor.redact(pending));
      pending = '';
      return write(out, structured(alone.value));
    }
    if (pending === '' && !/^\s*[[{]/.test(line)) return write(out, redactor.redact(`${line}\n`));
    pending += `${line}\n`;
    const doc = parse(pending);
    if (doc.ok) {
      pending = '';
      return write(out, structured(doc.value));
    }
    if (pending.length > MAX_PENDING) {
      const text = pending;
      pending = '';
      return write(out, redactor.redact(text));
    }
  };
  for await (const chunk of input) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
    tap?.write(text);
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) await emitLine(line);
  }
  const rest = decoder.decode();
  tap?.write(rest);
  partial += rest;
  if (partial !== '') await emitLine(partial);
  if (pending !== '') await write(out, redactor.redact(pending));
}

function parse(text: string): { ok: true; value: unknown } | { ok: false } {
  const t = text.trim();
  if (t === '' || !/^[[{"]/.test(t)) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(t) };
  } catch {
    return { ok: false };
  }
}
