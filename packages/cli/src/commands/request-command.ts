import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit, table } from '../output.js';

/** What the server answers for an access request (`GET /v1/requests/:id`). */
export interface RequestView {
  id: string;
  status: 'pending' | 'approved' | 'denied' | 'revoked' | 'expired';
  task_id: string;
  chain: string[];
  identity: string;
  role: string;
  scope: string;
  reason: string;
  ttl_seconds: number;
  children: boolean;
  approvals_required: number;
  approvals: { by: string; at: string }[];
  created_at: string;
  decided_at?: string;
  decided_by?: string;
  expires_at?: string;
  deny_reason?: string;
  requested_scope?: string;
}

/**
 * Exit codes of `custos request … --wait` (docs/jit.md): one per outcome, so
 * an agent's wrapper script can branch on them. 1, 2 and 3 keep the meaning
 * they have for every command (refused/failed, usage, no answer in time —
 * here: still pending when --wait ran out).
 */
export const REQUEST_EXIT = {
  approved: EXIT.ok,
  error: EXIT.failed,
  usage: EXIT.usage,
  timedOut: EXIT.timeout,
  denied: 4,
  expired: 5,
  revoked: 6,
} as const;

const usage = (message: string) => new CliError('CUSTOS_ERR_USAGE', message, EXIT.usage);
/** The server holds one long poll at most this long; --wait polls again until its own deadline. */
const POLL_SECONDS = 30;

/** The id, checked here so a typo is a usage error and never becomes another URL. */
function requestId(id: string): string {
  if (!/^req_[0-9a-f]{32}$/.test(id)) throw usage(`not a request id: ${id.slice(0, 100)}`);
  return id;
}

function seconds(text: string, flag: string): number {
  const match = /^(\d+)(s|m|h)?$/.exec(text.trim());
  if (!match) throw usage(`${flag} is a duration such as 90s, 10m or 1h`);
  const n = Number(match[1]) * ({ s: 1, m: 60, h: 3_600 }[match[2] ?? 's'] as number);
  if (n < 1) throw usage(`${flag} is at least one second`);
  return n;
}

const line = (r: RequestView) =>
  `${r.id}  ${r.status.padEnd(8)}  ${r.task_id}  ${r.scope}  ${r.approvals.length}/${r.approvals_required}  ${r.created_at}`;

const details = (r: RequestView) =>
  table([
    ['id', r.id],
    ['status', r.status],
    ['task', r.task_id],
    ['chain', r.chain.join(' > ')],
    ['identity', r.identity],
    ['role', r.role],
    ['scope', r.scope],
    ['requested_scope', r.requested_scope],
    ['reason', JSON.stringify(r.reason)],
    ['ttl', `${r.ttl_seconds}s`],
    ['children', r.children],
    ['approvals', `${r.approvals.length}/${r.approvals_required} ${r.approvals.map((a) => a.by).join(', ')}`],
    ['created_at', r.created_at],
    ['decided_at', r.decided_at],
    ['decided_by', r.decided_by],
    ['expires_at', r.expires_at],
    ['deny_reason', r.deny_reason === undefined ? undefined : JSON.stringify(r.deny_reason)],
  ]);

/** The exit code of an outcome; pending means --wait ran out. */
export function outcomeExit(status: RequestView['status']): number {
  switch (status) {
    case 'approved':
      return REQUEST_EXIT.approved;
    case 'denied':
      return REQUEST_EXIT.denied;
    case 'expired':
      return REQUEST_EXIT.expired;
    case 'revoked':
      return REQUEST_EXIT.revoked;
    case 'pending':
      return REQUEST_EXIT.timedOut;
  }
}

/**
 * Waits for a decision with the server's long poll (`?wait=`), asking again
 * until `timeoutSeconds` passed. Each call is one ordinary request, so the
 * CLI's request timeout is stretched to cover the server's hold.
 */
async function waitFor(io: CliIo, id: string, timeoutSeconds: number): Promise<RequestView> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  const client = new CustosClient({ ...io, requestTimeout: `${POLL_SECONDS + 15}s` });
  for (;;) {
    const left = Math.ceil((deadline - Date.now()) / 1000);
    const hold = Math.max(1, Math.min(POLL_SECONDS, left));
    const { request } = await client.request<{ request: RequestView }>('GET', `/v1/requests/${id}?wait=${hold}s`);
    if (request.status !== 'pending' || Date.now() >= deadline) return request;
  }
}

/** CLI codes of the --wait outcomes other than approval (docs/errors.md, CLI-only codes). */
const OUTCOME_CODE: Record<Exclude<RequestView['status'], 'approved'>, string> = {
  pending: 'CUSTOS_ERR_REQUEST_PENDING',
  denied: 'CUSTOS_ERR_REQUEST_DENIED',
  expired: 'CUSTOS_ERR_REQUEST_EXPIRED',
  revoked: 'CUSTOS_ERR_REQUEST_REVOKED',
};

/** Prints the outcome; anything but an approval then fails with its own exit code. */
function finish(io: CliIo, json: boolean | undefined, request: RequestView): void {
  emit(io, json, { request }, () => details(request));
  if (request.status === 'approved') return;
  const what = request.status === 'pending' ? 'is still pending (--wait ran out)' : `was ${request.status}`;
  throw new CliError(OUTCOME_CODE[request.status], `request ${request.id} ${what}`, outcomeExit(request.status));
}

/**
 * `custos request --scope … --reason … [--ttl] [--children] [--wait [T]]` (a
 * task asks for itself, with its task token in CUSTOS_TOKEN) and
 * `custos request list|show|approve|deny|revoke` (operators; a task may list,
 * show and revoke its own).
 */
export function registerRequestCommand(program: Command, io: CliIo): void {
  const request = program
    .command('request')
    .description('just-in-time access: a task asks for a scope beyond its own; humans approve (docs/jit.md)')
    .option('--scope <scope>', 'what to ask for: ACTION:PATTERN entries, e.g. read:kv/finance/ledger')
    .option('--reason <text>', 'why (shown to approvers)')
    .option('--ttl <duration>', 'how long the elevation lasts once approved (default 10m, never beyond the task)')
    .option('--children', 'ask that the task’s delegated children get it too')
    .option(
      '--wait [timeout]',
      `wait for the decision (default 15m); exit 0 approved, ${REQUEST_EXIT.denied} denied, ${REQUEST_EXIT.expired} expired, ${REQUEST_EXIT.revoked} revoked, ${REQUEST_EXIT.timedOut} still pending`,
    )
    .option('--json', 'JSON output: { request }')
    .action(
      async (opts: {
        scope?: string;
        reason?: string;
        ttl?: string;
        children?: boolean;
        wait?: string | true;
        json?: boolean;
      }) => {
        if (!opts.scope || !opts.reason) throw usage('custos request needs --scope and --reason (or a subcommand)');
        const ttl = opts.ttl === undefined ? undefined : seconds(opts.ttl, '--ttl');
        const waitSeconds =
          opts.wait === undefined ? undefined : opts.wait === true ? 900 : seconds(opts.wait, '--wait');
        const created = await new CustosClient(io).request<{ request: RequestView }>('POST', '/v1/requests', {
          scope: opts.scope,
          reason: opts.reason,
          ...(ttl !== undefined ? { ttl } : {}),
          ...(opts.children ? { children: true } : {}),
        });
        if (waitSeconds === undefined) {
          emit(
            io,
            opts.json,
            created,
            () => `${details(created.request)}\n(waiting for approval: custos request show ${created.request.id})`,
          );
          return;
        }
        io.stderr.write(`custos: request ${created.request.id} filed; waiting for a decision\n`);
        finish(io, opts.json, await waitFor(io, created.request.id, waitSeconds));
      },
    );

  request
    .command('list')
    .description('requests, newest first (an operator with list on sys/requests/ sees all; a task its own)')
    .option('--status <status>', 'pending (default), approved, denied, revoked, expired or all')
    .option('--json', 'JSON output: { requests }')
    .action(async (opts: { status?: string; json?: boolean }) => {
      const status = opts.status ?? 'pending';
      if (!['pending', 'approved', 'denied', 'revoked', 'expired', 'all'].includes(status)) {
        throw usage('--status is pending, approved, denied, revoked, expired or all');
      }
      const result = await new CustosClient(io).request<{ requests: RequestView[] }>(
        'GET',
        `/v1/requests?status=${status}`,
      );
      emit(io, opts.json, result, () =>
        result.requests.length === 0 ? 'No requests' : result.requests.map(line).join('\n'),
      );
    });

  request
    .command('show <id>')
    .description('one request; --wait blocks until it is decided (exit codes as for custos request --wait)')
    .option('--wait [timeout]', 'wait for the decision (default 15m)')
    .option('--json', 'JSON output: { request }')
    .action(async (id: string, opts: { wait?: string | true; json?: boolean }) => {
      const checked = requestId(id);
      if (opts.wait !== undefined) {
        const waitSeconds = opts.wait === true ? 900 : seconds(opts.wait, '--wait');
        finish(io, opts.json, await waitFor(io, checked, waitSeconds));
        return;
      }
      const result = await new CustosClient(io).request<{ request: RequestView }>('GET', `/v1/requests/${checked}`);
      emit(io, opts.json, result, () => details(result.request));
    });

  request
    .command('approve <id>')
    .description('approve (one vote); --ttl and --scope may only narrow what was asked')
    .option('--ttl <duration>', 'a shorter elevation')
    .option('--scope <scope>', 'a narrower scope')
    .option('--no-children', 'do not extend it to the task’s children even if asked')
    .option('--json', 'JSON output: { request }')
    .action(async (id: string, opts: { ttl?: string; scope?: string; children?: boolean; json?: boolean }) => {
      const result = await new CustosClient(io).request<{ request: RequestView }>(
        'POST',
        `/v1/requests/${requestId(id)}/approve`,
        {
          ...(opts.ttl !== undefined ? { ttl: seconds(opts.ttl, '--ttl') } : {}),
          ...(opts.scope !== undefined ? { scope: opts.scope } : {}),
          ...(opts.children === false ? { children: false } : {}),
        },
      );
      emit(io, opts.json, result, () => details(result.request));
    });

  request
    .command('deny <id>')
    .description('deny a pending request (final)')
    .option('--reason <text>', 'told to the requester')
    .option('--json', 'JSON output: { request }')
    .action(async (id: string, opts: { reason?: string; json?: boolean }) => {
      const result = await new CustosClient(io).request<{ request: RequestView }>(
        'POST',
        `/v1/requests/${requestId(id)}/deny`,
        opts.reason !== undefined ? { reason: opts.reason } : {},
      );
      emit(io, opts.json, result, () => details(result.request));
    });

  request
    .command('revoke <id>')
    .description('end an approved request’s elevation at once (or withdraw a pending one)')
    .option('--json', 'JSON output: { request }')
    .action(async (id: string, opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ request: RequestView }>(
        'POST',
        `/v1/requests/${requestId(id)}/revoke`,
        {},
      );
      emit(io, opts.json, result, () => details(result.request));
    });
}
