import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { collectList, collectRepeat } from '../option-parsers.js';
import { emit, table } from '../output.js';

interface EngineView {
  name: string;
  type: string;
  aws?: { region: string; sts_endpoint?: string; iam_endpoint?: string };
  created_time: string;
  updated_time: string;
  root_rotated_time: string | null;
  rotatable_users: string[];
  tls_ca?: string;
}

interface EngineRoleView {
  engine: string;
  name: string;
  creation_statements: string[];
  revocation_statements: string[];
  default_ttl_ms: number;
  max_ttl_ms: number;
  /** aws-sts roles. */
  aws?: { role_arn: string; session_policy?: string };
  updated_time: string;
}

/** `NAME/ROLE` → its two parts. */
function engineRole(spec: string): [string, string] {
  const [engine, role, ...rest] = spec.split('/');
  if (!engine || !role || rest.length > 0) {
    throw new CliError('CUSTOS_ERR_USAGE', `expected ENGINE/ROLE, got "${spec.slice(0, 80)}"`, EXIT.usage);
  }
  return [engine, role];
}

/** A statement, or `@file` to read it from a file (SQL often spans lines). */
const statement = (value: string) => (value.startsWith('@') ? readFileSync(value.slice(1), 'utf8').trim() : value);

const engineTable = (e: EngineView) =>
  table([
    ['name', e.name],
    ['type', e.type],
    ['updated', e.updated_time],
    ['root rotated', e.root_rotated_time],
    ...((e.aws
      ? [
          ['region', e.aws.region],
          ['sts endpoint', e.aws.sts_endpoint ?? '(AWS regional)'],
          ['iam endpoint', e.aws.iam_endpoint ?? '(AWS global)'],
        ]
      : [
          ['rotatable users', e.rotatable_users.length ? e.rotatable_users.join(', ') : '(none)'],
          ['tls ca', e.tls_ca ? '(set)' : '(system)'],
        ]) as Array<[string, string | null]>),
  ]);

/** `custos engine add|read|list|delete|rotate-root|role write|read|list|delete`. */
export function registerEngineCommand(program: Command, io: CliIo): void {
  const engine = program.command('engine').description('database engines for dynamic credentials');

  engine
    .command('add <name>')
    .description('add or replace an engine; its admin URL is stored behind the barrier and never shown again')
    .requiredOption('--type <type>', 'postgres, mysql or aws-sts')
    .option('--url <url>', 'admin connection URL (- reads it from stdin, keeping it out of shell history)')
    .option('--region <region>', 'aws-sts: the AWS region (custos’s AWS principal comes from the SDK default chain)')
    .option('--endpoint <url>', 'aws-sts: the STS endpoint (default AWS’s regional one)')
    .option('--iam-endpoint <url>', 'aws-sts: the IAM endpoint for the revocation deny (default AWS’s)')
    .option(
      '--rotatable-users <users>',
      'static users a database rotator may change (comma-separated; never the admin user; default: kept, or none)',
      collectList,
    )
    .option(
      '--tls-ca <file>',
      'CA certificates (PEM) the database’s TLS certificate must chain to; sent inline, implies TLS',
    )
    .option('--json', 'JSON output')
    .action(
      async (
        name: string,
        opts: {
          type: string;
          url?: string;
          rotatableUsers?: string[];
          tlsCa?: string;
          region?: string;
          endpoint?: string;
          iamEndpoint?: string;
          json?: boolean;
        },
      ) => {
        if (opts.type === 'aws-sts') {
          // No URL and no credential: the server's SDK default chain is its AWS principal.
          if (!opts.region) throw new CliError('CUSTOS_ERR_USAGE', '--region is required for aws-sts', EXIT.usage);
          const view = await new CustosClient(io).request<EngineView>(
            'PUT',
            `/v1/engines/${encodeURIComponent(name)}`,
            {
              type: 'aws-sts',
              region: opts.region,
              ...(opts.endpoint ? { sts_endpoint: opts.endpoint } : {}),
              ...(opts.iamEndpoint ? { iam_endpoint: opts.iamEndpoint } : {}),
            },
          );
          emit(
            io,
            opts.json,
            view,
            () => `Engine ${view.name} (aws-sts) verified with sts:GetCallerIdentity and stored`,
          );
          return;
        }
        let url = opts.url;
        if (url === undefined || url === '-') url = (await readAll(io.stdin)).trim();
        if (!url) throw new CliError('CUSTOS_ERR_USAGE', '--url is required', EXIT.usage);
        // Read here, by the operator's CLI: the server never reads a path it is given.
        const tlsCa = opts.tlsCa === undefined ? undefined : readFileSync(opts.tlsCa, 'utf8');
        const view = await new CustosClient(io).request<EngineView>('PUT', `/v1/engines/${encodeURIComponent(name)}`, {
          type: opts.type,
          url,
          ...(opts.rotatableUsers ? { rotatable_users: opts.rotatableUsers } : {}),
          ...(tlsCa !== undefined ? { tls_ca: tlsCa } : {}),
        });
        emit(io, opts.json, view, () => `Engine ${view.name} (${view.type}) connected and stored`);
      },
    );

  engine
    .command('read <name>')
    .description('show an engine (never its URL)')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const view = await new CustosClient(io).request<EngineView>('GET', `/v1/engines/${encodeURIComponent(name)}`);
      emit(io, opts.json, view, () => engineTable(view));
    });

  engine
    .command('list')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const { keys } = await new CustosClient(io).request<{ keys: string[] }>('GET', '/v1/engines');
      emit(io, opts.json, keys, () => keys.join('\n'));
    });

  engine
    .command('delete <name>')
    .description('delete an engine and its roles')
    .action(async (name: string) => {
      await new CustosClient(io).request('DELETE', `/v1/engines/${encodeURIComponent(name)}`);
      io.stdout.write(`Deleted engine ${name}\n`);
    });

  engine
    .command('rotatable-users <name>')
    .description('set the static users a database rotator may change on this engine (replaces the list)')
    .requiredOption('--users <users>', 'comma-separated user names; "" for none', (v: string) =>
      v
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean),
    )
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { users: string[]; json?: boolean }) => {
      const view = await new CustosClient(io).request<EngineView>(
        'PUT',
        `/v1/engines/${encodeURIComponent(name)}/rotatable-users`,
        { users: opts.users },
      );
      emit(io, opts.json, view, () =>
        view.rotatable_users.length
          ? `Rotatable users of ${view.name}: ${view.rotatable_users.join(', ')}`
          : `No user of ${view.name} is rotatable`,
      );
    });

  engine
    .command('rotate-root <name>')
    .description('replace the admin password custos uses (nobody learns the new one)')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const view = await new CustosClient(io).request<EngineView>(
        'POST',
        `/v1/engines/${encodeURIComponent(name)}/rotate-root`,
      );
      emit(io, opts.json, view, () => `Rotated the admin password of ${view.name}`);
    });

  const role = engine.command('role').description('roles of an engine: what a minted user may do');

  role
    .command('write <engine/role>')
    .description('write a role; its statements are checked against the database (rolled back) first')
    .option(
      '--creation-sql <sql>',
      'creation statement (repeatable; @file reads one); default: read-only',
      collectRepeat,
    )
    .option('--revocation-sql <sql>', 'revocation statement (repeatable; @file reads one)', collectRepeat)
    .option('--default-ttl <duration>', 'lease TTL when none is asked for (e.g. 5m)')
    .option('--max-ttl <duration>', 'longest lease, renewals included (e.g. 1h)')
    .option('--role-arn <arn>', 'aws-sts: the IAM role each task’s session assumes')
    .option('--session-policy <json|@file>', 'aws-sts: session policy (JSON, or @file), at most 2048 characters')
    .option('--json', 'JSON output')
    .action(
      async (
        spec: string,
        opts: {
          roleArn?: string;
          sessionPolicy?: string;
          creationSql?: string[];
          revocationSql?: string[];
          defaultTtl?: string;
          maxTtl?: string;
          json?: boolean;
        },
      ) => {
        const [name, roleName] = engineRole(spec);
        const body = {
          ...(opts.creationSql ? { creation_statements: opts.creationSql.map(statement) } : {}),
          ...(opts.revocationSql ? { revocation_statements: opts.revocationSql.map(statement) } : {}),
          ...(opts.defaultTtl ? { default_ttl: opts.defaultTtl } : {}),
          ...(opts.maxTtl ? { max_ttl: opts.maxTtl } : {}),
          ...(opts.roleArn ? { role_arn: opts.roleArn } : {}),
          ...(opts.sessionPolicy ? { session_policy: statement(opts.sessionPolicy) } : {}),
        };
        const view = await new CustosClient(io).request<EngineRoleView>(
          'PUT',
          `/v1/engines/${encodeURIComponent(name)}/roles/${encodeURIComponent(roleName)}`,
          body,
        );
        emit(io, opts.json, view, () => `Wrote role ${view.engine}/${view.name}`);
      },
    );

  role
    .command('read <engine/role>')
    .option('--json', 'JSON output')
    .action(async (spec: string, opts: { json?: boolean }) => {
      const [name, roleName] = engineRole(spec);
      const view = await new CustosClient(io).request<EngineRoleView>(
        'GET',
        `/v1/engines/${encodeURIComponent(name)}/roles/${encodeURIComponent(roleName)}`,
      );
      emit(io, opts.json, view, () =>
        table([
          ['role', `${view.engine}/${view.name}`],
          ['default ttl', `${view.default_ttl_ms / 1000}s`],
          ['max ttl', `${view.max_ttl_ms / 1000}s`],
          ...((view.aws
            ? [
                ['iam role', view.aws.role_arn],
                ['session policy', view.aws.session_policy ?? '(none: the IAM role’s own policies)'],
              ]
            : [
                ['creation', view.creation_statements.length ? view.creation_statements.join('; ') : '(built-in)'],
                [
                  'revocation',
                  view.revocation_statements.length ? view.revocation_statements.join('; ') : '(built-in)',
                ],
              ]) as Array<[string, string]>),
        ]),
      );
    });

  role
    .command('list <engine>')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const { keys } = await new CustosClient(io).request<{ keys: string[] }>(
        'GET',
        `/v1/engines/${encodeURIComponent(name)}/roles`,
      );
      emit(io, opts.json, keys, () => keys.join('\n'));
    });

  role.command('delete <engine/role>').action(async (spec: string) => {
    const [name, roleName] = engineRole(spec);
    await new CustosClient(io).request(
      'DELETE',
      `/v1/engines/${encodeURIComponent(name)}/roles/${encodeURIComponent(roleName)}`,
    );
    io.stdout.write(`Deleted role ${spec}\n`);
  });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

export { engineRole };
