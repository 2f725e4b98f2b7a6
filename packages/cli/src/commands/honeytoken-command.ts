import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit, table } from '../output.js';

/** What the server answers for a honeytoken: never its value. */
interface HoneytokenView {
  path: string;
  kind: string;
  created_time: string;
  created_by: string;
}

const KINDS = ['aws', 'openai', 'db-url', 'generic'];

/**
 * `custos honeytoken create|list|delete`: decoy secrets whose every touch
 * is a critical finding (docs/anomaly.md#honeytokens). Needs `admin` on
 * `sys/honeytokens`. The decoy value comes back once, at creation
 * (`--show-value`, `--json`), to be planted: every later read of it, an
 * admin's too, is a touch.
 */
export function registerHoneytokenCommand(program: Command, io: CliIo): void {
  const honeytoken = program
    .command('honeytoken')
    .description('decoy secrets that raise a critical alert when touched (admin on sys/honeytokens)');

  honeytoken
    .command('create <path>')
    .description('write a random, realistic decoy of the kind as a new secret at PATH and watch it')
    .requiredOption('--kind <kind>', 'aws, openai, db-url or generic (shaped as a custos token)')
    .option('--host <host[:port]>', 'db-url: the database host the decoy URL names (default port 5432)')
    .option('--engine <name>', 'db-url: take scheme, host and port from this registered engine')
    .option('--show-value', 'print the decoy fields, to plant them (shown once: a later read trips the alarm)')
    .option('--json', 'JSON output (with the decoy fields)')
    .action(
      async (
        path: string,
        opts: { kind: string; host?: string; engine?: string; showValue?: boolean; json?: boolean },
      ) => {
        if (!KINDS.includes(opts.kind)) {
          throw new CliError('CUSTOS_ERR_USAGE', `--kind is one of ${KINDS.join(', ')}`, EXIT.usage);
        }
        const created = await new CustosClient(io).request<HoneytokenView & { data: Record<string, string> }>(
          'POST',
          '/v1/honeytokens',
          {
            path,
            kind: opts.kind,
            ...(opts.host !== undefined ? { host: opts.host } : {}),
            ...(opts.engine !== undefined ? { engine: opts.engine } : {}),
          },
        );
        emit(io, opts.json, created, () =>
          [
            `Created honeytoken ${created.path} (${created.kind})`,
            ...(opts.showValue ? [table(Object.entries(created.data))] : []),
          ].join('\n'),
        );
      },
    );

  honeytoken
    .command('list')
    .description('every honeytoken: path, kind, when and by whom it was created')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ honeytokens: HoneytokenView[] }>('GET', '/v1/honeytokens');
      emit(io, opts.json, result, () =>
        result.honeytokens.length === 0
          ? 'No honeytokens'
          : result.honeytokens.map((h) => `${h.path}  ${h.kind}  ${h.created_time}  ${h.created_by}`).join('\n'),
      );
    });

  honeytoken
    .command('delete <path>')
    .description('stop watching PATH and destroy its decoy secret with every version')
    .action(async (path: string) => {
      await new CustosClient(io).request('POST', '/v1/honeytokens/delete', { path });
      io.stdout.write(`${table([['Deleted honeytoken', path]])}\n`);
    });
}
