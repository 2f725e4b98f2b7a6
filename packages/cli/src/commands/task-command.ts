import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient, resolveToken } from '../http-client.js';
import { collectRepeat, collectScope, type StartOptions, startBody } from '../option-parsers.js';
import { emit, table } from '../output.js';
import { delegateTask } from '../task-exchange.js';
import type { IssuedTaskView } from './login-command.js';

/** A task as the API shows it. */
export interface TaskView {
  id: string;
  parent_id: string | null;
  depth: number;
  role: string;
  sub: string;
  scope: string;
  labels: Record<string, string>;
  accessor: string;
  state: string;
  via: string;
  created_time: string;
  expire_time: string;
  ended_by?: string;
}

/** The most tasks the server returns per listing request. */
const LIST_PAGE = 500;
const TASK_ID = /^tsk_[A-Za-z0-9_-]{22}$/;
const ACCESSOR = /^tac_[A-Za-z0-9_-]{22}$/;

const usage = (message: string) => new CliError('CUSTOS_ERR_USAGE', message, EXIT.usage);
const taskId = (id: string) => {
  if (!TASK_ID.test(id)) throw usage(`not a task id: ${id.slice(0, 40)}`);
  return id;
};
const accessorPath = (accessor: string) => {
  if (!ACCESSOR.test(accessor)) throw usage(`not a task accessor: ${accessor.slice(0, 40)}`);
  return `/v1/tasks/accessors/${accessor}`;
};

const labelText = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

export const taskTable = (t: TaskView) =>
  table([
    ['id', t.id],
    ['parent', t.parent_id ?? '-'],
    ['role', t.role],
    ['depth', t.depth],
    ['state', t.state],
    ['scope', t.scope || '(role grant)'],
    ['sub', t.sub],
    ['via', t.via],
    ['accessor', t.accessor],
    ['labels', labelText(t.labels) || '-'],
    ['created', t.created_time],
    ['expires', t.expire_time],
    ...(t.ended_by ? ([['ended_by', t.ended_by]] as const) : []),
  ]);

const taskLine = (t: TaskView) =>
  [
    t.id,
    t.role,
    `depth=${t.depth}`,
    t.state,
    `scope=${t.scope || '(role grant)'}`,
    `expires=${t.expire_time}`,
    ...(Object.keys(t.labels).length ? [labelText(t.labels)] : []),
  ].join('  ');

/**
 * The tree as indented lines, parents before children (`├─`, `└─`). Tasks
 * whose parent is not in the answer (the requested task itself) are roots.
 */
export function renderTree(tasks: readonly TaskView[]): string {
  const ids = new Set(tasks.map((t) => t.id));
  const children = new Map<string, TaskView[]>();
  const roots: TaskView[] = [];
  for (const t of tasks) {
    if (t.parent_id && ids.has(t.parent_id)) children.set(t.parent_id, [...(children.get(t.parent_id) ?? []), t]);
    else roots.push(t);
  }
  const lines: string[] = [];
  const walk = (t: TaskView, prefix: string, branch: string, last: boolean) => {
    lines.push(`${prefix}${branch}${taskLine(t)}`);
    const kids = children.get(t.id) ?? [];
    const below = branch === '' ? prefix : `${prefix}${last ? '   ' : '│  '}`;
    kids.forEach((kid, i) => {
      walk(kid, below, i === kids.length - 1 ? '└─ ' : '├─ ', i === kids.length - 1);
    });
  };
  for (const root of roots) walk(root, '', '', true);
  return lines.join('\n');
}

/** `custos task start|delegate|show|tree|list|revoke|end|lookup|extend`. */
export function registerTaskCommand(program: Command, io: CliIo): void {
  const task = program.command('task').description('tasks: short-lived, least-privilege identities for agent work');

  task
    .command('start')
    .description('start a root task of a role (operator); prints the task token alone')
    .requiredOption('--role <role>', 'the role (agent type)')
    .requiredOption('--ttl <duration>', 'lifetime, within the role’s max TTL, e.g. 10m')
    .option('--scope <entries...>', 'narrow the task: ACTION:PATTERN entries, e.g. read:kv/team/*', collectScope)
    .option(
      '--label <key=value...>',
      'operator labels of the task (added to the role’s, never changing them)',
      collectRepeat,
    )
    .option('--json', 'JSON output (token, task_id, accessor, expire_time, scope)')
    .action(async (opts: StartOptions & { role: string; json?: boolean }) => {
      const issued = await new CustosClient(io).request<IssuedTaskView>(
        'POST',
        `/v1/roles/${encodeURIComponent(opts.role)}/tasks`,
        startBody(opts),
      );
      emit(io, opts.json, issued, () => issued.token);
    });

  task
    .command('delegate')
    .description('mint a narrower child task of the current one (RFC 8693 token exchange); prints its token alone')
    .option('--scope <entries...>', 'the child’s slice: ACTION:PATTERN entries within the parent’s', collectScope)
    .option('--ttl <duration>', 'the child’s lifetime (never past the parent’s)')
    .option(
      '--resource <url>',
      'a registered resource (RFC 8707): the child token is for it alone (aud), refused by custos itself',
    )
    .option('--json', 'JSON output (access_token, task_id, accessor, scope, expires_in)')
    .action(async (opts: { scope?: string[]; ttl?: string; resource?: string; json?: boolean }) => {
      const subject = resolveToken(io);
      if (!subject) throw usage('no current task token: set CUSTOS_TOKEN or log in with --save');
      const result = await delegateTask(io, subject, { ...opts });
      emit(io, opts.json, result, () => result.access_token);
    });

  task
    .command('show <id>')
    .description('show one task')
    .option('--json', 'JSON output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const view = await new CustosClient(io).request<TaskView>('GET', `/v1/tasks/${taskId(id)}`);
      emit(io, opts.json, view, () => taskTable(view));
    });

  task
    .command('tree <id>')
    .description('the task and every descendant, as an indented tree')
    .option('--json', 'JSON output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<{ tasks: TaskView[] }>('GET', `/v1/tasks/${taskId(id)}/tree`);
      emit(io, opts.json, result, () => renderTree(result.tasks));
    });

  task
    .command('list')
    .description('list tasks, one per line')
    .option('--role <role>', 'only tasks of this role')
    .option('--state <state>', 'only active, ended, revoked or expired tasks')
    .option('--limit <n>', 'at most this many (default 1000), fetched a page at a time')
    .option('--cursor <cursor>', 'continue an earlier listing (its next_cursor, from --json)')
    .option('--json', 'JSON output: { tasks, next_cursor? }')
    .action(async (opts: { role?: string; state?: string; limit?: string; cursor?: string; json?: boolean }) => {
      const wanted = opts.limit === undefined ? 1_000 : Number(opts.limit);
      if (!Number.isInteger(wanted) || wanted < 1) throw usage('--limit is a whole number from 1');
      const client = new CustosClient(io);
      const tasks: TaskView[] = [];
      let cursor = opts.cursor;
      // The server reads at most a page of stored tasks per request (a
      // policy decision each, for an operator), so a long listing is
      // several requests; each continues where the last one stopped.
      do {
        const query = new URLSearchParams({
          ...(opts.role ? { role: opts.role } : {}),
          ...(opts.state ? { state: opts.state } : {}),
          limit: String(Math.min(wanted - tasks.length, LIST_PAGE)),
          ...(cursor ? { cursor } : {}),
        }).toString();
        const page = await client.request<{ tasks: TaskView[]; next_cursor?: string }>('GET', `/v1/tasks?${query}`);
        tasks.push(...page.tasks);
        cursor = page.next_cursor;
      } while (cursor && tasks.length < wanted);
      const result = { tasks, ...(cursor ? { next_cursor: cursor } : {}) };
      emit(io, opts.json, result, () => tasks.map(taskLine).join('\n'));
    });

  for (const [verb, help] of [
    ['revoke', 'revoke a task (by id or --accessor) and its whole subtree'],
    ['end', 'end a task whose work is done; its subtree ends with it'],
  ] as const) {
    const cmd = task.command(`${verb} [id]`).description(help);
    if (verb === 'revoke') cmd.option('--accessor <accessor>', 'revoke by accessor instead of id (operator)');
    cmd
      .option('--json', 'JSON output')
      .action(async (id: string | undefined, opts: { accessor?: string; json?: boolean }) => {
        if (!id === !opts.accessor) throw usage(`${verb} takes a task id${verb === 'revoke' ? ' or --accessor' : ''}`);
        const path = opts.accessor ? `${accessorPath(opts.accessor)}/revoke` : `/v1/tasks/${taskId(id!)}/${verb}`;
        const view = await new CustosClient(io).request<TaskView>('POST', path);
        const done = verb === 'revoke' ? 'Revoked' : 'Ended';
        emit(io, opts.json, view, () => `${done} task ${view.id} and its subtree (state ${view.state})`);
      });
  }

  task
    .command('lookup')
    .description('look a task up by accessor (operator; no task token needed)')
    .requiredOption('--accessor <accessor>', 'the task’s accessor (tac_…)')
    .option('--json', 'JSON output')
    .action(async (opts: { accessor: string; json?: boolean }) => {
      const view = await new CustosClient(io).request<TaskView>('GET', accessorPath(opts.accessor));
      emit(io, opts.json, view, () => taskTable(view));
    });

  task
    .command('extend')
    .description('extend a task by accessor, within its role’s max TTL and its parent’s expiry')
    .requiredOption('--accessor <accessor>', 'the task’s accessor (tac_…)')
    .requiredOption('--ttl <duration>', 'new lifetime from now, e.g. 5m')
    .option('--json', 'JSON output')
    .action(async (opts: { accessor: string; ttl: string; json?: boolean }) => {
      const view = await new CustosClient(io).request<TaskView>('POST', `${accessorPath(opts.accessor)}/extend`, {
        ttl: opts.ttl,
      });
      emit(io, opts.json, view, () => `Extended task ${view.id} until ${view.expire_time}`);
    });
}
