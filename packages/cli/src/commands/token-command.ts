import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit, table } from '../output.js';
import { registerTokenIntrospectCommand } from './token-introspect-command.js';

interface TokenView {
  token?: string;
  accessor: string;
  policies: string[];
  display_name: string;
  expire_time: string | null;
}

const collect = (value: string, previous: string[] = []) => [...previous, ...value.split(',').filter(Boolean)];

/** `custos token create|lookup|revoke`. */
export function registerTokenCommand(program: Command, io: CliIo): void {
  const token = program.command('token').description('operator tokens for humans and services');

  token
    .command('create')
    .description('create a token holding some of your policies; prints the token alone')
    .requiredOption('--policy <name...>', 'policy names (repeat or comma-separate)', collect)
    .requiredOption('--ttl <duration>', 'lifetime, e.g. 1h')
    .option('--display-name <name>', 'a name for audit events')
    .option('--json', 'JSON output')
    .action(async (opts: { policy: string[]; ttl: string; displayName?: string; json?: boolean }) => {
      const result = await new CustosClient(io).request<TokenView>('POST', '/v1/auth/token/create', {
        policies: opts.policy,
        ttl: opts.ttl,
        ...(opts.displayName ? { display_name: opts.displayName } : {}),
      });
      // Alone on stdout so `CUSTOS_TOKEN=$(custos token create …)` works.
      emit(io, opts.json, result, () => result.token ?? '');
    });

  token
    .command('lookup [accessor]')
    .description('describe your token, or another one by accessor')
    .option('--json', 'JSON output')
    .action(async (accessor: string | undefined, opts: { json?: boolean }) => {
      const path = accessor ? `/v1/auth/token/accessors/${encodeURIComponent(accessor)}` : '/v1/auth/token/self';
      const view = await new CustosClient(io).request<TokenView>('GET', path);
      emit(io, opts.json, view, () =>
        table([
          ['accessor', view.accessor],
          ['display_name', view.display_name],
          ['policies', view.policies.join(', ')],
          ['expire_time', view.expire_time ?? 'never'],
        ]),
      );
    });

  token
    .command('revoke [accessor]')
    .description('revoke a token by accessor, or your own with --self')
    .option('--self', 'revoke the token you are using')
    .option('--json', 'JSON output')
    .action(async (accessor: string | undefined, opts: { self?: boolean; json?: boolean }) => {
      const client = new CustosClient(io);
      if (opts.self || !accessor) await client.request('POST', '/v1/auth/token/revoke-self');
      else await client.request('POST', '/v1/auth/token/revoke-accessor', { accessor });
      emit(io, opts.json, { revoked: accessor ?? 'self' }, () => `Revoked ${accessor ?? 'this token'}`);
    });

  registerTokenIntrospectCommand(token, io);
}
