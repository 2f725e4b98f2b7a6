import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient, encodePath } from '../http-client.js';
import { emit } from '../output.js';

interface RotateOptions {
  every?: string;
  cron?: string;
  grace?: string;
  rotator?: string;
  engine?: string;
  username?: string;
  url?: string;
  field?: string;
  now?: boolean;
  json?: boolean;
}

/**
 * `custos secret rotate PATH`: rotate now, or set a rotation policy
 * (`--every 1h` or `--cron EXPR`, `--rotator random|database|webhook`) and rotate with `--now`.
 * Added to the existing `secret` command.
 */
export function registerSecretRotateCommand(program: Command, io: CliIo): void {
  const secret = program.commands.find((c) => c.name() === 'secret');
  if (!secret) throw new Error('register the secret command first');
  secret
    .command('rotate <path>')
    .description('rotate now (pending → applied → current), or set a rotation policy')
    .option('--every <duration>', 'rotate on this schedule (e.g. 1h)')
    .option('--cron <expression>', 'or on a five-field cron schedule in UTC (e.g. "0 3 * * *")')
    .option('--grace <duration>', 'how long previous stays readable for pinned tasks (default 15m)')
    .option('--rotator <type>', 'random (default), database (ALTER ROLE/USER) or webhook')
    .option('--engine <name>', 'database rotator: the engine (needs rotate on sys/engines/NAME/users/USER)')
    .option('--username <user>', 'database rotator: the static user (one of the engine’s rotatable users)')
    .option(
      '--url <url>',
      'webhook rotator: where {path, version, field, value} is POSTed (must answer {"ack":true}; needs read on PATH)',
    )
    .option('--field <key>', 'which field holds the rotated value')
    .option('--now', 'with a policy option: also rotate now')
    .option('--json', 'JSON output')
    .action(async (path: string, opts: RotateOptions) => {
      const client = new CustosClient(io);
      const policy = opts.every || opts.cron || opts.grace || opts.rotator;
      if (policy) {
        const type = opts.rotator ?? 'random';
        const field = opts.field ? { field: opts.field } : {};
        let rotator: Record<string, unknown>;
        if (type === 'random') rotator = { type, ...field };
        else if (type === 'database') rotator = { type, engine: opts.engine, username: opts.username, ...field };
        else if (type === 'webhook') rotator = { type, url: opts.url, ...field };
        else throw new CliError('CUSTOS_ERR_USAGE', 'rotator is random, database or webhook', EXIT.usage);
        const config = await client.request('PUT', `/v1/rotation/${encodePath(path)}`, {
          rotator,
          ...(opts.every ? { every: opts.every } : {}),
          ...(opts.cron ? { cron: opts.cron } : {}),
          ...(opts.grace ? { grace: opts.grace } : {}),
        });
        if (!opts.now) {
          emit(io, opts.json, config, () => `Rotation policy of ${path} set`);
          return;
        }
      }
      const result = await client.request<{ path: string; version: number; previous: number | null }>(
        'POST',
        `/v1/secrets/rotate/${encodePath(path)}`,
      );
      emit(
        io,
        opts.json,
        result,
        () => `Rotated ${result.path}: version ${result.version} is current (previous: ${result.previous ?? '-'})`,
      );
    });
}
