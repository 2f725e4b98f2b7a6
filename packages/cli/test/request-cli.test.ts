import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

// `custos request` against a real server: an agent (its task token in
// CUSTOS_TOKEN) asks and waits; an approver decides from the command line;
// each outcome of --wait has its own exit code (docs/jit.md).

describe('custos request', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  let approver: string;
  const ok = async (args: string[], options: { token?: string } = {}) => {
    const run = await h.cli(args, options);
    if (run.code !== 0) throw new Error(`custos ${args.join(' ')} failed: ${run.stderr}`);
    return run.stdout;
  };
  const startTask = async () =>
    JSON.parse(await ok(['task', 'start', '--role', 'analyst', '--ttl', '20m', '--json'])) as {
      token: string;
      task_id: string;
    };
  /** The id of the task's pending request, as an approver lists it (polled: the asking command runs meanwhile). */
  const pendingOf = async (taskId: string) => {
    for (let i = 0; i < 100; i++) {
      const listed = JSON.parse(await ok(['request', 'list', '--json'], { token: approver })) as {
        requests: { id: string; task_id: string }[];
      };
      const found = listed.requests.find((r) => r.task_id === taskId);
      if (found) return found.id;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no pending request');
  };

  beforeAll(async () => {
    h = await startCliServer();
    const write = (name: string, text: string) => {
      const file = join(h.dir, `${name}.cedar`);
      writeFileSync(file, text);
      return file;
    };
    await ok([
      'policy',
      'write',
      'agent',
      write('agent', 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/public/");\n'),
    ]);
    await ok([
      'policy',
      'write',
      'finance-approver',
      write(
        'approver',
        [
          'permit(principal, action == Custos::Action::"approve", resource in Custos::Path::"sys/requests/read/kv/finance/");',
          'permit(principal, action in [Custos::Action::"list", Custos::Action::"read"], resource in Custos::Path::"sys/requests/");',
          '',
        ].join('\n'),
      ),
    ]);
    await ok([
      'role',
      'write',
      'analyst',
      '--policy',
      'agent',
      '--max-ttl',
      '30m',
      '--request-scope',
      'read:kv/finance/*',
      '--approvers',
      'finance-approver',
    ]);
    expect(await ok(['role', 'read', 'analyst'])).toMatch(/request_scope\s+read:kv\/finance\/\*/);
    approver = (
      JSON.parse(await ok(['token', 'create', '--policy', 'finance-approver', '--ttl', '1h', '--json'])) as {
        token: string;
      }
    ).token;
    await ok(['secret', 'put', 'kv/finance/ledger', 'value=fake-ledger-value']);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('asks and waits; an approver approves; --wait exits 0 and the same token reads', async () => {
    const task = await startTask();
    expect((await h.cli(['secret', 'get', 'kv/finance/ledger'], { token: task.token })).code).toBe(1);
    const waiting = h.cli(
      ['request', '--scope', 'read:kv/finance/ledger', '--reason', 'reconcile Q3', '--ttl', '5m', '--wait', '60s'],
      { token: task.token },
    );
    const id = await pendingOf(task.task_id);
    expect(await ok(['request', 'show', id], { token: approver })).toMatch(/reason\s+"reconcile Q3"/);
    expect(await ok(['request', 'approve', id, '--ttl', '2m'], { token: approver })).toMatch(/status\s+approved/);
    const run = await waiting;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/status\s+approved/);
    expect(run.stdout).toMatch(/ttl\s+120s/);
    const read = await h.cli(['secret', 'get', 'kv/finance/ledger', '--field', 'value'], { token: task.token });
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout.trim()).toBe('fake-ledger-value');
    // Revoked: the outcome has its own exit code, and the read is refused again.
    await ok(['request', 'revoke', id], { token: approver });
    const shown = await h.cli(['request', 'show', id, '--wait', '1s'], { token: task.token });
    expect(shown.code).toBe(6);
    expect(shown.stderr).toContain('CUSTOS_ERR_REQUEST_REVOKED');
    expect((await h.cli(['secret', 'get', 'kv/finance/ledger'], { token: task.token })).code).toBe(1);
  });

  it('denied exits 4, still pending after --wait exits 3, expired exits 5', async () => {
    const task = await startTask();
    const waiting = h.cli(['request', '--scope', 'read:kv/finance/ledger', '--reason', 'r', '--wait', '60s'], {
      token: task.token,
    });
    const id = await pendingOf(task.task_id);
    await ok(['request', 'deny', id, '--reason', 'not now'], { token: approver });
    const denied = await waiting;
    expect(denied.code).toBe(4);
    expect(denied.stderr).toContain('CUSTOS_ERR_REQUEST_DENIED');

    const pending = await h.cli(['request', '--scope', 'read:kv/finance/ledger', '--reason', 'r', '--wait', '1s'], {
      token: task.token,
    });
    expect(pending.code).toBe(3);
    expect(pending.stderr).toContain('CUSTOS_ERR_REQUEST_PENDING');
    const second = await pendingOf(task.task_id);
    await ok(['task', 'end', task.task_id]);
    const expired = await h.cli(['request', 'show', second, '--wait', '1s'], { token: approver });
    expect(expired.code).toBe(5);
  });

  it('bad input: a scope beyond the ceiling, a bad id, missing flags', async () => {
    const task = await startTask();
    const refused = await h.cli(['request', '--scope', 'read:kv/hr/x', '--reason', 'r'], { token: task.token });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('CUSTOS_ERR_REQUEST_NOT_REQUESTABLE');
    expect((await h.cli(['request', 'approve', '../tasks/x'], { token: approver })).code).toBe(2);
    expect((await h.cli(['request', '--scope', 'read:kv/finance/x'], { token: task.token })).code).toBe(2);
    expect((await h.cli(['role', 'write', 'x', '--policy', 'agent', '--max-ttl', '1m', '--approvals', '0'])).code).toBe(
      2,
    );
  });
});
