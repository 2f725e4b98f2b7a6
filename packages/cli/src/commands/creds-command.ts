import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit, table } from '../output.js';
import { engineRole } from './engine-command.js';

interface IssuedLease {
  lease_id: string;
  engine: string;
  role: string;
  username: string;
  password: string;
  /** aws-sts: with username = access key id and password = secret access key. */
  session_token?: string;
  expire_time: string;
  ttl_seconds: number;
  task_id: string | null;
}

/** `custos creds ENGINE/ROLE`: a fresh database user leased to the current task. */
export function registerCredsCommand(program: Command, io: CliIo): void {
  program
    .command('creds <engine/role>')
    .description('dynamic database credentials, leased to the calling task (dropped when it ends)')
    .option('--ttl <duration>', 'lease TTL (within the role’s max, never past the task)')
    .option('--format <format>', 'table, json or env (DB_USERNAME=… lines; AWS_ACCESS_KEY_ID=… for aws-sts)', 'table')
    .option('--json', 'JSON output (same as --format json)')
    .action(async (spec: string, opts: { ttl?: string; format: string; json?: boolean }) => {
      const [engine, role] = engineRole(spec);
      const issued = await new CustosClient(io).request<IssuedLease>(
        'POST',
        `/v1/creds/${encodeURIComponent(engine)}/${encodeURIComponent(role)}`,
        opts.ttl ? { ttl: opts.ttl } : {},
      );
      if (opts.format === 'env' && issued.session_token !== undefined) {
        // The AWS SDKs' and CLI's own variable names: `eval "$(custos creds aws/r --format env)"`.
        io.stdout.write(
          `AWS_ACCESS_KEY_ID=${issued.username}\nAWS_SECRET_ACCESS_KEY=${issued.password}\nAWS_SESSION_TOKEN=${issued.session_token}\nCUSTOS_LEASE_ID=${issued.lease_id}\n`,
        );
        return;
      }
      if (opts.format === 'env') {
        io.stdout.write(
          `DB_USERNAME=${issued.username}\nDB_PASSWORD=${issued.password}\nCUSTOS_LEASE_ID=${issued.lease_id}\n`,
        );
        return;
      }
      emit(io, opts.json || opts.format === 'json', issued, () =>
        table([
          ['lease_id', issued.lease_id],
          ['username', issued.username],
          ['password', issued.password],
          ...(issued.session_token !== undefined ? [['session_token', issued.session_token] as [string, string]] : []),
          ['expires', issued.expire_time],
          ['task', issued.task_id],
        ]),
      );
    });
}
