import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedactNodeStream, createRedactor, type KnownSecret } from '@custos/redact';
import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient, resolveToken } from '../http-client.js';
import { collectRepeat, collectScope, parsePairs } from '../option-parsers.js';
import { delegateTask } from '../task-exchange.js';
import { DEFAULT_PROXY_ADDR, proxyEnvironment } from './run-proxy-env.js';

interface RunOptions {
  role?: string;
  /** `--delegate`: CMD runs as a child of the caller's own task (CUSTOS_TOKEN), not as a new task of a role. */
  delegate?: boolean;
  ttl?: string;
  scope?: string[];
  secret?: string[];
  /** `--proxy [ADDR]`: true for the default address. */
  proxy?: string | true;
}

/** `ENV=kv/path#field`: which secret field goes into which environment variable. */
function parseSecretMappings(pairs: readonly string[]): Array<{ env: string; path: string; field: string }> {
  return parsePairs(pairs, '--secret').map(([env, ref]) => {
    const hash = ref.lastIndexOf('#');
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(env) || hash <= 0 || hash === ref.length - 1) {
      throw new CliError('CUSTOS_ERR_USAGE', '--secret is ENV=kv/path#field', EXIT.usage);
    }
    return { env, path: ref.slice(0, hash), field: ref.slice(hash + 1) };
  });
}

/** The task CMD runs as, and how to end it when CMD is done. */
interface RunTask {
  token: string;
  task_id: string;
  end(): Promise<unknown>;
}

/**
 * `--role R`: a fresh task of role R, started (and ended) with the caller's
 * operator token. `--delegate`: a child of the caller's own task, minted by
 * token exchange and ended with its own token — so an agent holding only a
 * task token can run a sub-agent as a narrower slice of itself, in its tree
 * (audited with the chain, cut off when any ancestor is revoked).
 */
async function startRunTask(io: CliIo, opts: RunOptions): Promise<RunTask> {
  if (Boolean(opts.role) === Boolean(opts.delegate)) {
    throw new CliError('CUSTOS_ERR_USAGE', 'give exactly one of --role ROLE and --delegate', EXIT.usage);
  }
  if (opts.role) {
    const operator = new CustosClient(io);
    const started = await operator.request<{ token: string; task_id: string }>(
      'POST',
      `/v1/roles/${encodeURIComponent(opts.role)}/tasks`,
      { ...(opts.ttl ? { ttl: opts.ttl } : {}), ...(opts.scope?.length ? { scope: opts.scope.join(' ') } : {}) },
    );
    return { ...started, end: () => operator.request('POST', `/v1/tasks/${started.task_id}/end`) };
  }
  const parent = resolveToken(io);
  if (!parent)
    throw new CliError('CUSTOS_ERR_USAGE', '--delegate needs the current task token in CUSTOS_TOKEN', EXIT.usage);
  const child = await delegateTask(io, parent, {
    ...(opts.scope ? { scope: opts.scope } : {}),
    ...(opts.ttl ? { ttl: opts.ttl } : {}),
  });
  const self = new CustosClient({ ...io, env: { ...io.env, CUSTOS_TOKEN: child.access_token } });
  return {
    token: child.access_token,
    task_id: child.task_id,
    // A 401 means the child's own token is refused: an ancestor revoked the
    // tree (or it expired). The task is over, which is what ending it asks.
    end: () =>
      self.request('POST', `/v1/tasks/${child.task_id}/end`).catch((error: unknown) => {
        if (!(error instanceof CliError && error.code === 'CUSTOS_ERR_UNAUTHENTICATED')) throw error;
      }),
  };
}

/**
 * `custos run (--role R | --delegate) [--ttl 10m] [--scope …] [--secret ENV=kv/path#field…] -- CMD…`
 *
 * Runs CMD as a task: a fresh task of role R (started with your operator
 * token), or with `--delegate` a child of your own task, whose token is in
 * CMD's `CUSTOS_TOKEN`; the named secret fields are
 * read *with the task's token* (so the task's scope and policies apply) and
 * put in CMD's environment; CMD's stdout and stderr are redacted of those
 * values, the task token and every credential pattern; when CMD exits the
 * task is ended, so its token and everything below it die with it. Exits
 * with CMD's exit code. `--proxy` points CMD's HTTP(S) at the credential
 * proxy (run-proxy-env.ts); a proxy that does not answer stops the run
 * before CMD starts.
 */
export function registerRunCommand(program: Command, io: CliIo): void {
  program
    .command('run')
    .description('run a command as a task: injected token and secrets, redacted output, task ended on exit')
    .option('--role <role>', 'role of the task (started with your operator token)')
    .option('--delegate', 'run CMD as a narrower child of your own task (CUSTOS_TOKEN) instead of a task of a role')
    .option('--ttl <duration>', 'task lifetime (default: the role’s default TTL)')
    .option('--scope <entries>', 'narrow the task: ACTION:PATTERN entries (repeatable)', collectScope)
    .option('--secret <env=path#field>', 'put a secret field into an environment variable (repeatable)', collectRepeat)
    .option(
      '--proxy [addr]',
      `send CMD's HTTP(S) through the credential proxy (default ${DEFAULT_PROXY_ADDR}, or CUSTOS_PROXY_ADDR): upstreams' keys are attached on the wire, never given to CMD`,
    )
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(async (command: string[], opts: RunOptions) => {
      const operator = new CustosClient(io);
      const started = await startRunTask(io, opts);
      const asTask = new CustosClient({ ...io, env: { ...io.env, CUSTOS_TOKEN: started.token } });
      const env: NodeJS.ProcessEnv = { ...io.env, CUSTOS_TOKEN: started.token, CUSTOS_TASK_ID: started.task_id };
      const known: KnownSecret[] = [{ name: 'custos-task-token', value: started.token }];
      let exitCode: number = EXIT.failed;
      // Holds the CA file of --proxy; owner only, removed when CMD is done.
      const scratch = opts.proxy ? mkdtempSync(join(tmpdir(), 'custos-run-')) : undefined;
      try {
        let bound = new Map<string, string>();
        if (opts.proxy && scratch) {
          const addr = opts.proxy === true ? (io.env.CUSTOS_PROXY_ADDR ?? DEFAULT_PROXY_ADDR) : opts.proxy;
          const proxied = await proxyEnvironment(io, operator, addr, started.token, scratch);
          Object.assign(env, proxied.env);
          bound = proxied.bound;
        }
        for (const { env: name, path, field } of parseSecretMappings(opts.secret ?? [])) {
          // An upstream's key, under --proxy: a placeholder, never read; the proxy attaches the value.
          const upstream = bound.get(`${path}#${field}`);
          if (upstream) {
            env[name] = `custos-placeholder-${upstream}`;
            continue;
          }
          const secret = await asTask.request<{ data: Record<string, string> }>(
            'GET',
            `/v1/secrets/data/${path.split('/').map(encodeURIComponent).join('/')}`,
          );
          const value = secret.data[field];
          if (value === undefined) throw new CliError('CUSTOS_ERR_FIELD_NOT_FOUND', `${path} has no field "${field}"`);
          env[name] = value;
          known.push({ name: `${path}#${field}`, value });
        }
        // Injected values are known secrets even below the redactor's default
        // 8-character cut-off (weak passwords exist); below 4 characters a
        // value would mask ordinary text everywhere, so those are left out.
        const redactor = createRedactor({ secrets: known, minSecretLength: 4 });
        exitCode = await runRedacted(command, env, redactor, io);
      } finally {
        if (scratch) rmSync(scratch, { recursive: true, force: true });
        await started.end().catch((error: unknown) => {
          io.stderr.write(`custos: could not end task ${started.task_id}: ${(error as Error).message}\n`);
        });
      }
      process.exitCode = exitCode;
    });
}

/** How long what CMD left behind gets to exit after SIGTERM before SIGKILL. */
const GROUP_GRACE_MS = 2_000;

/**
 * Runs CMD in a process group of its own (`detached`: setsid), its output
 * through the redactor. When CMD exits, whatever it started and left
 * running — a background job, a daemonised helper — is ended with the
 * group (SIGTERM, then SIGKILL after a grace): it holds the task's token in
 * its environment, and the task ends right after, so nothing of CMD may
 * outlive it. (A process that left the group on purpose, by setsid of its
 * own, escapes this; its token still dies with the task.) Signals sent to
 * `custos run` are passed to the whole group, as a terminal would.
 */
function runRedacted(
  command: string[],
  env: NodeJS.ProcessEnv,
  redactor: ReturnType<typeof createRedactor>,
  io: CliIo,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = command as [string, ...string[]];
    const child = spawn(file, args, { env, stdio: ['inherit', 'pipe', 'pipe'], detached: true });
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // The group is gone already.
      }
    };
    const forward = (signal: NodeJS.Signals) => signalGroup(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const out = child.stdout.setEncoding('utf8').pipe(createRedactNodeStream(redactor));
    const err = child.stderr.setEncoding('utf8').pipe(createRedactNodeStream(redactor));
    out.on('data', (chunk: string) => io.stdout.write(chunk));
    err.on('data', (chunk: string) => io.stderr.write(chunk));
    const drained = Promise.all([new Promise((r) => out.on('end', r)), new Promise((r) => err.on('end', r))]);
    const stopForwarding = () => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    };
    child.on('error', (error) => {
      stopForwarding();
      reject(new CliError('CUSTOS_ERR_LOCAL', `cannot run ${file}: ${error.message}`, EXIT.usage));
    });
    // 'exit', not 'close': a leftover that holds CMD's stdout open would keep 'close' from ever coming.
    child.on('exit', (code, signal) => {
      stopForwarding();
      signalGroup('SIGTERM');
      const kill = setTimeout(() => signalGroup('SIGKILL'), GROUP_GRACE_MS);
      // A process that escaped the group may hold the pipes open for ever: stop waiting for it.
      let giveUp: NodeJS.Timeout | undefined;
      const abandoned = new Promise<void>((r) => {
        giveUp = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          r();
        }, 2 * GROUP_GRACE_MS);
      });
      void Promise.race([drained, abandoned]).then(() => {
        clearTimeout(kill);
        clearTimeout(giveUp);
        resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : EXIT.failed));
      });
    });
  });
}
