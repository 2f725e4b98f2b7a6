import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { collectRepeat, parseLabels } from '../option-parsers.js';
import { emit } from '../output.js';

/** `custos bootstrap create`: single-use secure introduction for a freshly spawned agent. */
export function registerBootstrapCommand(program: Command, io: CliIo): void {
  const bootstrap = program.command('bootstrap').description('single-use bootstrap tokens for new agents');

  bootstrap
    .command('create')
    .description('create a single-use bootstrap token for an agent of a role; prints the token alone')
    .requiredOption('--role <role>', 'the role the agent logs in as')
    .option('--ttl <duration>', 'how long the token may wait for its one use (at most 1h)', '5m')
    .option(
      '--label <key=value...>',
      'operator labels for the task the token starts (added to the role’s, never changing them)',
      collectRepeat,
    )
    .option('--json', 'JSON output (token, accessor, expire_time)')
    .action(async (opts: { role: string; ttl: string; label?: string[]; json?: boolean }) => {
      const labels = parseLabels(opts.label);
      const result = await new CustosClient(io).request<{ token: string; accessor: string; expire_time: string }>(
        'POST',
        `/v1/roles/${encodeURIComponent(opts.role)}/bootstrap`,
        { ttl: opts.ttl, ...(labels ? { labels } : {}) },
      );
      // Alone on stdout, so it can be handed to the agent without parsing:
      // `custos login --bootstrap "$(custos bootstrap create --role r)"`.
      emit(io, opts.json, result, () => result.token);
    });
}
