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
      'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/app/");\n',
    );
    await write(['policy', 'write', 'app-read', policy]);
    await write(['role', 'write', 'worker', '--policy', 'app-read', '--max-ttl', '10m']);
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
});
