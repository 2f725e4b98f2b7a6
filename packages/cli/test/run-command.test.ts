import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

describe('custos run', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  const password = `fake-db-password-${Math.random().toString(36).slice(2, 12)}`;
  beforeAll(async () => {
    h = await startCliServer();
    const write = async (args: string[]) => expect((await h.cli(args)).code).toBe(0);
    await write(['secret', 'put', 'kv/app/db', `password=${password}`, 'user=svc']);
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const policy = join(h.dir, 'app.cedar');
    writeFileSync(
      policy,
      'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/app/");\n' +
        'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");\n',
    );
    await write(['policy', 'write', 'app-read', policy]);
    await write(['role', 'write', 'worker', '--policy', 'app-read', '--max-ttl', '10m', '--max-depth', '2']);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('injects the task token and secrets, redacts them from the output, and ends the task on exit', async () => {
    const script =
      'console.log("pw=" + process.env.DB_PASSWORD); console.error("tok=" + process.env.CUSTOS_TOKEN); ' +
      'console.log("task=" + process.env.CUSTOS_TASK_ID); process.exit(3)';
    const run = await h.cli([
      'run',
      '--role',
      'worker',
      '--ttl',
      '2m',
      '--secret',
      'DB_PASSWORD=kv/app/db#password',
      '--',
      process.execPath,
      '-e',
      script,
    ]);
    expect(run.code).toBe(3);
    expect(run.stdout).toContain('pw=[REDACTED:kv/app/db#password]');
    expect(run.stdout).not.toContain(password);
    expect(run.stderr).toContain('tok=[REDACTED');
    const taskId = /task=(tsk_[A-Za-z0-9_-]{22})/.exec(run.stdout)?.[1];
    expect(taskId).toBeDefined();
    const shown = JSON.parse((await h.cli(['task', 'show', taskId!, '--json'])).stdout);
    expect(shown.state).toBe('ended');
  });

  it('regression #9: redacts a secret split across lines (LF, CRLF with an indent) or printed in another case', async () => {
    const script = [
      'const pw = process.env.DB_PASSWORD, tok = process.env.CUSTOS_TOKEN;',
      'process.stdout.write("wrapped: " + pw.slice(0, 12) + "\\r\\n    " + pw.slice(12) + "\\n");',
      'console.log("shouted: " + pw.toUpperCase());',
      'console.error("token: " + tok.slice(0, 40) + "\\n" + tok.slice(40, 80) + "\\n" + tok.slice(80));',
    ].join(' ');
    const run = await h.cli([
      'run',
      '--role',
      'worker',
      '--secret',
      'DB_PASSWORD=kv/app/db#password',
      '--',
      process.execPath,
      '-e',
      script,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('wrapped: [REDACTED:kv/app/db#password]\nshouted: [REDACTED:kv/app/db#password]\n');
    expect(run.stderr).toBe('token: [REDACTED:custos-task-token]\n');
    const flat = (s: string) => s.replace(/\s+/g, '').toLowerCase();
    expect(flat(run.stdout)).not.toContain(flat(password).slice(0, 12));
  });

  it('a secret outside the task’s grant is refused and the command does not run', async () => {
    await h.cli(['secret', 'put', 'kv/other/x', `k=${password}`]);
    const run = await h.cli([
      'run',
      '--role',
      'worker',
      '--secret',
      'X=kv/other/x#k',
      '--',
      process.execPath,
      '-e',
      'console.log("ran")',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('CUSTOS_ERR_PERMISSION_DENIED');
    expect(run.stdout).not.toContain('ran');
  });

  it('--delegate runs CMD as a narrower child of the caller’s task, in its tree, ended on exit', async () => {
    const parent = JSON.parse((await h.cli(['task', 'start', '--role', 'worker', '--ttl', '5m', '--json'])).stdout);
    const run = await h.cli(
      [
        'run',
        '--delegate',
        '--scope',
        'read:kv/app/db',
        '--secret',
        'DB_PASSWORD=kv/app/db#password',
        '--',
        process.execPath,
        '-e',
        'console.log("task=" + process.env.CUSTOS_TASK_ID + " pw=" + process.env.DB_PASSWORD)',
      ],
      { token: parent.token },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('pw=[REDACTED:kv/app/db#password]');
    const childId = /task=(tsk_[A-Za-z0-9_-]{22})/.exec(run.stdout)?.[1];
    expect(childId).toBeDefined();
    expect(childId).not.toBe(parent.task_id);
    const child = JSON.parse((await h.cli(['task', 'show', childId!, '--json'])).stdout);
    expect(child).toMatchObject({ parent_id: parent.task_id, depth: 1, state: 'ended', scope: 'read:kv/app/db' });
    // The parent goes on: only the child ended with CMD.
    expect(JSON.parse((await h.cli(['task', 'show', parent.task_id, '--json'])).stdout).state).toBe('active');
  });

  it('--delegate cannot widen the caller’s task; --role and --delegate together are a usage error', async () => {
    const parent = JSON.parse(
      (
        await h.cli([
          'task',
          'start',
          '--role',
          'worker',
          '--ttl',
          '5m',
          '--scope',
          'read:kv/app/db delegate:sys/tasks/*',
          '--json',
        ])
      ).stdout,
    );
    const wider = await h.cli(
      ['run', '--delegate', '--scope', 'read:kv/app/*', '--', process.execPath, '-e', 'console.log("ran")'],
      { token: parent.token },
    );
    expect(wider.code).not.toBe(0);
    expect(wider.stderr).toContain('CUSTOS_ERR_SCOPE_EXCEEDS_PARENT');
    expect(wider.stdout).not.toContain('ran');
    const both = await h.cli(['run', '--role', 'worker', '--delegate', '--', process.execPath, '-e', '1']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('CUSTOS_ERR_USAGE');
    const neither = await h.cli(['run', '--', process.execPath, '-e', '1']);
    expect(neither.code).toBe(2);
  });

  it('a child process that outlives CMD is ended with its process group, and the task is still ended', async () => {
    const { existsSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const pidFile = join(h.dir, `leftover-${Math.random().toString(36).slice(2)}.pid`);
    // CMD starts a background process (same group, its own stdio closed) that would run for a minute, then exits at once.
    const leftoverScript = `require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setTimeout(() => {}, 60000)`;
    const script = [
      'const { spawn } = require("node:child_process");',
      `const c = spawn(process.execPath, ["-e", ${JSON.stringify(leftoverScript)}], { stdio: "ignore" });`,
      'c.unref();',
      `const wait = () => require("node:fs").existsSync(${JSON.stringify(pidFile)}) ? console.log("task=" + process.env.CUSTOS_TASK_ID) : setTimeout(wait, 20);`,
      'wait();',
    ].join(' ');
    const run = await h.cli(['run', '--role', 'worker', '--', process.execPath, '-e', script]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(existsSync(pidFile)).toBe(true);
    const leftover = Number(readFileSync(pidFile, 'utf8'));
    // Gone, or a zombie nobody has reaped yet (a container's PID 1 may not reap): either way it runs no more.
    const alive = () => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${leftover}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    // SIGTERM was sent before `custos run` returned; give the kernel a moment to reap it.
    for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive()).toBe(false);
    const taskId = /task=(tsk_[A-Za-z0-9_-]{22})/.exec(run.stdout)?.[1];
    expect(JSON.parse((await h.cli(['task', 'show', taskId!, '--json'])).stdout).state).toBe('ended');
  });
});
