import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

// `custos audit search` against a real server: a task's allowed and denied
// reads found by task, path prefix, action and decision; paging with
// --before-seq; a bad --decision refused before any request.

describe('custos audit search', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  let task: { token: string; task_id: string };
  const ok = async (args: string[], options: { token?: string } = {}) => {
    const run = await h.cli(args, options);
    if (run.code !== 0) throw new Error(`custos ${args.join(' ')} failed: ${run.stderr}`);
    return run.stdout;
  };

  beforeAll(async () => {
    h = await startCliServer();
    const policy = join(h.dir, 'app.cedar');
    writeFileSync(
      policy,
      'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/app/");\n',
    );
    await ok(['policy', 'write', 'app', policy]);
    await ok(['role', 'write', 'agent', '--policy', 'app', '--max-ttl', '30m']);
    await ok(['secret', 'put', 'kv/app/db', 'pw=fake-cli-search-value']);
    task = JSON.parse(await ok(['task', 'start', '--role', 'agent', '--ttl', '10m', '--json']));
    await ok(['secret', 'get', 'kv/app/db'], { token: task.token });
    expect((await h.cli(['secret', 'get', 'kv/other/x'], { token: task.token })).code).not.toBe(0);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('finds a task’s reads by task, path, action and decision', async () => {
    const allowed = await ok(['audit', 'search', '--task', task.task_id, '--path', 'kv/*', '--action', 'read']);
    const lines = allowed.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/read kv\/other\/x {2}deny {2}403/);
    expect(lines[1]).toMatch(/read kv\/app\/db {2}allow {2}200/);
    expect(allowed).not.toContain('fake-cli-search-value');
    const denied = JSON.parse(await ok(['audit', 'search', '--decision', 'deny', '--path', 'kv/other/x', '--json']));
    expect(denied).toMatchObject({ complete: true, records: [{ event: { auth: { task_id: task.task_id } } }] });
  });

  it('pages with --limit and --before-seq', async () => {
    const first = await ok(['audit', 'search', '--task', task.task_id, '--limit', '1']);
    const more = /More: rerun with --before-seq (\d+)/.exec(first);
    expect(more).not.toBeNull();
    const second = await ok(['audit', 'search', '--task', task.task_id, '--limit', '1', '--before-seq', more![1]!]);
    expect(second).toContain('kv/app/db');
  });

  it('refuses a bad decision or limit with a clear error', async () => {
    const usage = await h.cli(['audit', 'search', '--decision', 'maybe']);
    expect(usage.code).not.toBe(0);
    expect(usage.stderr).toContain('--decision must be allow, deny or error');
    const limit = await h.cli(['audit', 'search', '--limit', '10000']);
    expect(limit.code).not.toBe(0);
    expect(limit.stderr).toContain('CUSTOS_ERR_VALIDATION');
  });
});
