import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { collectRepeat } from '../option-parsers.js';
import { emit, table } from '../output.js';

interface AwsBinding {
  role: string;
  accounts?: string[];
  principal_arns?: string[];
  session_names?: string[];
}

interface AwsMethodView {
  name: string;
  server_id: string;
  sts_endpoint?: string;
  bindings: AwsBinding[];
}

const usage = (message: string) => new CliError('CUSTOS_ERR_USAGE', message, EXIT.usage);

/**
 * `--bind ROLE:account=123456789012,arn=arn:aws:iam::…:role/app-*,session=pod-*`
 * → one binding (repeat `account=`/`arn=`/`session=` for several values).
 */
function parseBinding(spec: string): AwsBinding {
  const colon = spec.indexOf(':');
  if (colon < 1) throw usage(`--bind ROLE:account=…,arn=…,session=… (got "${spec.slice(0, 80)}")`);
  const binding: AwsBinding = { role: spec.slice(0, colon) };
  for (const part of spec.slice(colon + 1).split(/,(?=(?:account|arn|session)=)/)) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    const field =
      key === 'account'
        ? 'accounts'
        : key === 'arn'
          ? 'principal_arns'
          : key === 'session'
            ? 'session_names'
            : undefined;
    if (!field || !value) throw usage(`--bind: unknown part "${part.slice(0, 80)}" (account=, arn=, session=)`);
    binding[field] = [...(binding[field] ?? []), value];
  }
  return binding;
}

/** `custos auth aws add|read|list|delete`: AWS IAM logins (signed sts:GetCallerIdentity). */
export function registerAuthAwsCommand(auth: Command, io: CliIo): void {
  const aws = auth.command('aws').description('AWS IAM logins: a signed sts:GetCallerIdentity, as Vault’s aws method');

  aws
    .command('add <name>')
    .description('configure (or replace) an AWS method: the server id every login must sign, the bindings')
    .requiredOption('--server-id <id>', 'signed into every login (X-Custos-Server-ID): requests for other servers fail')
    .option(
      '--sts-endpoint <url>',
      'where logins are forwarded (default https://sts.amazonaws.com); never the caller’s',
    )
    .requiredOption(
      '--bind <ROLE:account=…,arn=…,session=…...>',
      'a custos role and the AWS callers that may enter it (repeatable)',
      collectRepeat,
    )
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { serverId: string; stsEndpoint?: string; bind: string[]; json?: boolean }) => {
      const view = await new CustosClient(io).request<AwsMethodView>(
        'PUT',
        `/v1/auth/aws/methods/${encodeURIComponent(name)}`,
        {
          server_id: opts.serverId,
          ...(opts.stsEndpoint ? { sts_endpoint: opts.stsEndpoint } : {}),
          bindings: opts.bind.map(parseBinding),
        },
      );
      emit(io, opts.json, view, () => `AWS method ${view.name} stored (${view.bindings.length} binding(s))`);
    });

  aws
    .command('read <name>')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const view = await new CustosClient(io).request<AwsMethodView>(
        'GET',
        `/v1/auth/aws/methods/${encodeURIComponent(name)}`,
      );
      emit(io, opts.json, view, () =>
        table([
          ['name', view.name],
          ['server id', view.server_id],
          ['sts endpoint', view.sts_endpoint ?? 'https://sts.amazonaws.com'],
          ...view.bindings.map(
            (b) =>
              [
                `role ${b.role}`,
                [
                  ...(b.accounts ?? []).map((a) => `account=${a}`),
                  ...(b.principal_arns ?? []).map((a) => `arn=${a}`),
                  ...(b.session_names ?? []).map((a) => `session=${a}`),
                ].join(', '),
              ] as [string, string],
          ),
        ]),
      );
    });

  aws
    .command('list')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const out = await new CustosClient(io).request<{ methods: string[] }>('GET', '/v1/auth/aws/methods');
      emit(io, opts.json, out, () => out.methods.join('\n'));
    });

  aws.command('delete <name>').action(async (name: string) => {
    await new CustosClient(io).request('DELETE', `/v1/auth/aws/methods/${encodeURIComponent(name)}`);
    io.stdout.write(`Deleted AWS method ${name}\n`);
  });
}
