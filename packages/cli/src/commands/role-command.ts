import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { collectList, collectRepeat, parseLabels, parsePairs } from '../option-parsers.js';
import { emit, table } from '../output.js';

interface RoleView {
  name: string;
  policies: string[];
  max_ttl: string;
  default_ttl: string;
  auth: string[];
  bound_claims: Record<string, string[]>;
  bound_cidrs: string[];
  max_depth: number;
  require_dpop: boolean;
  jwt_methods: string[];
  labels?: Record<string, string>;
  grantable_labels?: string[];
  active_hours?: string;
  request_scope?: string;
  approvers?: string[];
  approvals?: number;
  suspended?: Suspension;
  suspended_identities?: Record<string, Suspension>;
  updated_time: string;
}

/** Who suspended, when, and on which finding (an anomaly action). */
interface Suspension {
  by: string;
  at: string;
  finding_id?: string;
  rule?: string;
}

const suspensionText = (s: Suspension) => `by ${s.by} at ${s.at}${s.rule ? ` (rule ${s.rule})` : ''}`;

interface WriteOptions {
  requestScope?: string;
  approvers?: string[];
  approvals?: string;
  policy: string[];
  maxTtl: string;
  defaultTtl?: string;
  auth?: string[];
  boundClaims?: string[];
  boundCidrs?: string[];
  maxDepth?: number;
  requireDpop?: boolean;
  jwtMethod?: string[];
  label?: string[];
  grantableLabels?: string[];
  activeHours?: string;
  json?: boolean;
}

const AUTH_METHODS = ['bootstrap', 'jwt', 'cert', 'aws'];

/** `--bound-claims repo=acme/* --bound-claims repo=acme2/*` → `{ repo: ['acme/*', 'acme2/*'] }`. */
function boundClaims(pairs: string[]): Record<string, string[]> {
  const claims: Record<string, string[]> = {};
  for (const [key, value] of parsePairs(pairs, '--bound-claims')) claims[key] = [...(claims[key] ?? []), value];
  return claims;
}

const maxDepth = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CliError('CUSTOS_ERR_USAGE', '--max-depth is a whole number', EXIT.usage);
  return n;
};

export const roleTable = (role: RoleView) =>
  table([
    ['name', role.name],
    ['policies', role.policies.join(', ')],
    ['max_ttl', role.max_ttl],
    ['default_ttl', role.default_ttl],
    ['auth', role.auth.join(', ')],
    [
      'bound_claims',
      Object.entries(role.bound_claims)
        .map(([k, v]) => `${k}=${v.join('|')}`)
        .join(' ') || '-',
    ],
    ['bound_cidrs', role.bound_cidrs.join(', ') || '-'],
    ['max_depth', role.max_depth],
    ['require_dpop', role.require_dpop],
    ['jwt_methods', role.jwt_methods.join(', ') || '-'],
    [
      'labels',
      Object.entries(role.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || '-',
    ],
    ['grantable_labels', role.grantable_labels?.join(', ') || '-'],
    ['active_hours', role.active_hours ?? '-'],
    ['request_scope', role.request_scope ?? '-'],
    ['approvers', role.approvers?.join(', ') || '-'],
    ['approvals', role.approvals ?? 1],
    ['suspended', role.suspended ? suspensionText(role.suspended) : 'no'],
    ...Object.entries(role.suspended_identities ?? {}).map(
      ([identity, s]) => ['suspended identity', `${identity} ${suspensionText(s)}`] as [string, string],
    ),
  ]);

/** `custos role write|read|list|delete`: agent types. */
export function registerRoleCommand(program: Command, io: CliIo): void {
  const role = program.command('role').description('roles: agent types, their policies, lifetimes and logins');

  role
    .command('write <name>')
    .description('create a role, or update one (options not given keep their current values)')
    .requiredOption('--policy <name...>', 'policies its tasks hold (repeat or comma-separate)', collectList)
    .requiredOption('--max-ttl <duration>', 'longest task lifetime, delegated ones included, e.g. 15m')
    .option('--default-ttl <duration>', 'lifetime when a request names none')
    .option('--auth <methods>', 'allowed logins: bootstrap,jwt,cert', collectList)
    .option('--bound-claims <key=value...>', 'JWT login: claims that must match (`*` suffix = prefix)', collectRepeat)
    .option('--bound-cidrs <cidr...>', 'logins only from these networks', collectList)
    .option('--max-depth <n>', 'deepest delegation below a root task (0 = none)', maxDepth)
    .option('--require-dpop', 'task tokens are DPoP-bound (RFC 9449)')
    .option('--no-require-dpop', 'task tokens are bearer tokens')
    .option(
      '--jwt-method <name...>',
      'JWT login: the configured methods it accepts (required with --auth jwt)',
      collectList,
    )
    .option(
      '--label <key=value...>',
      'operator labels every task of the role carries (policies may rely on them)',
      collectRepeat,
    )
    .option(
      '--grantable-labels <key...>',
      'label keys a bootstrap token, an operator start or a JWT claim mapping may set on its tasks (default: none)',
      collectList,
    )
    .option(
      '--active-hours <windows>',
      "declared working hours, e.g. 'Mon-Fri 07:00-19:00 Europe/Berlin' (comma-separate several; none clears): the off-hours rule judges against them",
    )
    .option(
      '--request-scope <scope>',
      "just-in-time: what its tasks may ask for beyond their scope, e.g. 'read:kv/finance/*' ('' clears; docs/jit.md)",
    )
    .option(
      '--approvers <policy...>',
      'policies an approver’s token must hold one of (repeat or comma-separate)',
      collectList,
    )
    .option('--approvals <n>', 'distinct approvals a request needs (default 1, at most 10)')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: WriteOptions) => {
      if (opts.approvals !== undefined && !/^(10|[1-9])$/.test(opts.approvals)) {
        throw new CliError('CUSTOS_ERR_USAGE', '--approvals is a whole number from 1 to 10', EXIT.usage);
      }
      const unknown = opts.auth?.filter((m) => !AUTH_METHODS.includes(m)) ?? [];
      if (unknown.length > 0) {
        throw new CliError(
          'CUSTOS_ERR_USAGE',
          `--auth takes ${AUTH_METHODS.join(', ')}; not ${unknown[0]}`,
          EXIT.usage,
        );
      }
      const body = {
        policies: opts.policy,
        max_ttl: opts.maxTtl,
        ...(opts.defaultTtl ? { default_ttl: opts.defaultTtl } : {}),
        ...(opts.auth?.length ? { auth: [...new Set(opts.auth)] } : {}),
        ...(opts.boundClaims?.length ? { bound_claims: boundClaims(opts.boundClaims) } : {}),
        ...(opts.boundCidrs?.length ? { bound_cidrs: opts.boundCidrs } : {}),
        ...(opts.maxDepth !== undefined ? { max_depth: opts.maxDepth } : {}),
        ...(opts.requireDpop !== undefined ? { require_dpop: opts.requireDpop } : {}),
        ...(opts.jwtMethod?.length ? { jwt_methods: opts.jwtMethod } : {}),
        ...(opts.label?.length ? { labels: parseLabels(opts.label) } : {}),
        ...(opts.grantableLabels ? { grantable_labels: opts.grantableLabels } : {}),
        ...(opts.activeHours !== undefined ? { active_hours: opts.activeHours } : {}),
        ...(opts.requestScope !== undefined ? { request_scope: opts.requestScope } : {}),
        ...(opts.approvers?.length ? { approvers: opts.approvers } : {}),
        ...(opts.approvals !== undefined ? { approvals: Number(opts.approvals) } : {}),
      };
      const result = await new CustosClient(io).request<RoleView>('PUT', `/v1/roles/${encodeURIComponent(name)}`, body);
      emit(io, opts.json, result, () => `Wrote role ${name}`);
    });

  role
    .command('read <name>')
    .alias('show')
    .description('a role: its policies, logins, active hours and suspension')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<RoleView>('GET', `/v1/roles/${encodeURIComponent(name)}`);
      emit(io, opts.json, result, () => roleTable(result));
    });

  role
    .command('list')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ roles: string[] }>('GET', '/v1/roles');
      emit(io, opts.json, result, () => result.roles.join('\n'));
    });

  for (const verb of ['suspend', 'resume'] as const) {
    role
      .command(`${verb} <name>`)
      .description(
        verb === 'suspend'
          ? 'suspend a role (or --identity under it): logins, starts, delegations and its live tasks are refused'
          : 'lift the suspension of a role (or of --identity under it); needs admin on sys/roles/<name>',
      )
      .option('--identity <id>', 'one identity under the role (e.g. spiffe://…, jwt:…, bootstrap:…)')
      .option('--json', 'JSON output')
      .action(async (name: string, opts: { identity?: string; json?: boolean }) => {
        const result = await new CustosClient(io).request<{ changed: boolean; role: RoleView }>(
          'POST',
          `/v1/roles/${encodeURIComponent(name)}/${verb}`,
          opts.identity !== undefined ? { identity: opts.identity } : {},
        );
        const what = opts.identity !== undefined ? `identity ${opts.identity} of role ${name}` : `role ${name}`;
        const done = verb === 'suspend' ? 'Suspended' : 'Resumed';
        const already = verb === 'suspend' ? 'was already suspended' : 'was not suspended';
        emit(io, opts.json, result, () => (result.changed ? `${done} ${what}` : `The ${what} ${already}`));
      });
  }

  role
    .command('delete <name>')
    .description('delete a role: its tasks end (revoked, with their leases)')
    .option('--json', 'JSON output')
    .action(async (name: string, opts: { json?: boolean }) => {
      await new CustosClient(io).request('DELETE', `/v1/roles/${encodeURIComponent(name)}`);
      emit(io, opts.json, { deleted: name }, () => `Deleted role ${name}`);
    });
}
