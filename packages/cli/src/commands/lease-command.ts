import type { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { emit, table } from '../output.js';

interface LeaseView {
  id: string;
  engine: string;
  role: string;
  username: string;
  task_id: string | null;
  state: string;
  attempts: number;
  last_error: string | null;
  expire_time: string;
  issued_time: string;
}

const line = (l: LeaseView) =>
  `${l.id}  ${l.engine}/${l.role}  ${l.username}  state=${l.state}  expires=${l.expire_time}${
    l.last_error ? `  attempts=${l.attempts} last_error=${l.last_error}` : ''
  }`;
const leaseTable = (l: LeaseView) =>
  table([
    ['lease_id', l.id],
    ['role', `${l.engine}/${l.role}`],
    ['username', l.username],
    ['task', l.task_id],
    ['state', l.state],
    ['expires', l.expire_time],
    ['attempts', l.attempts],
    ['last_error', l.last_error],
  ]);

/** `custos lease list|show|renew|revoke`. */
export function registerLeaseCommand(program: Command, io: CliIo): void {
  const lease = program.command('lease').description('leases of dynamic credentials');

  lease
    .command('list')
    .description('a task: its own leases; an operator: all (or --task)')
    .option('--task <id>', 'only this task’s leases')
    .option('--state <state>', 'active, revoking, revoked or revoke_failed')
    .option('--json', 'JSON output')
    .action(async (opts: { task?: string; state?: string; json?: boolean }) => {
      const query = new URLSearchParams({
        ...(opts.task ? { task_id: opts.task } : {}),
        ...(opts.state ? { state: opts.state } : {}),
      }).toString();
      const { leases } = await new CustosClient(io).request<{ leases: LeaseView[] }>(
        'GET',
        `/v1/leases${query ? `?${query}` : ''}`,
      );
      emit(io, opts.json, leases, () => (leases.length ? leases.map(line).join('\n') : 'no leases'));
    });

  lease
    .command('show <id>')
    .option('--json', 'JSON output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const view = await new CustosClient(io).request<LeaseView>('GET', `/v1/leases/${encodeURIComponent(id)}`);
      emit(io, opts.json, view, () => leaseTable(view));
    });

  lease
    .command('renew <id>')
    .description('extend a lease (within its role’s max TTL, never past its task)')
    .option('--increment <duration>', 'new TTL from now', '1h')
    .option('--json', 'JSON output')
    .action(async (id: string, opts: { increment: string; json?: boolean }) => {
      const view = await new CustosClient(io).request<LeaseView>('POST', `/v1/leases/${encodeURIComponent(id)}/renew`, {
        increment: opts.increment,
      });
      emit(io, opts.json, view, () => `Lease ${view.id} now expires ${view.expire_time}`);
    });

  lease
    .command('revoke <id>')
    .description('revoke now: the user is dropped and its sessions closed')
    .option('--json', 'JSON output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const view = await new CustosClient(io).request<LeaseView>('POST', `/v1/leases/${encodeURIComponent(id)}/revoke`);
      emit(io, opts.json, view, () => `Revoked lease ${view.id} (${view.username})`);
    });
}
