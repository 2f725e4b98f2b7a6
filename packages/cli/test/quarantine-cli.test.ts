import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

// `custos role write --active-hours`, `role show`, `role suspend|resume` and
// what `alerts show` says an automatic action did — against a real server
// started from a configuration file that gives `dead-task-token` the
// `suspend-role` action.

describe('custos role suspend|resume and automatic quarantine', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  const ok = async (args: string[], options: { token?: string } = {}) => {
    const run = await h.cli(args, options);
    if (run.code !== 0) throw new Error(`custos ${args.join(' ')} failed: ${run.stderr}`);
    return run.stdout;
  };
  const login = async () => {
    const token = (await ok(['bootstrap', 'create', '--role', 'agent'])).trim();
    return h.cli(['login', '--bootstrap', token, '--json'], { token: '' });
  };

  beforeAll(async () => {
    h = await startCliServer({}, { anomaly: { rules: { 'dead-task-token': { action: 'suspend-role' } } } });
    const policy = join(h.dir, 'app.cedar');
    writeFileSync(
      policy,
      'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/app/");\n',
    );
    await ok(['policy', 'write', 'app', policy]);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('declares active hours, and refuses a bad window with its code and no change', async () => {
    const write = (hours: string) =>
      h.cli(['role', 'write', 'agent', '--policy', 'app', '--max-ttl', '30m', '--active-hours', hours]);
    expect((await write('Mon-Fri 07:00-19:00 Europe/Berlin, Sat 09:00-12:00 Europe/Berlin')).code).toBe(0);
    const shown = await ok(['role', 'show', 'agent']);
    expect(shown).toMatch(/active_hours\s+Mon-Fri 07:00-19:00 Europe\/Berlin, Sat 09:00-12:00 Europe\/Berlin/);
    expect(shown).toMatch(/suspended\s+no/);
    const bad = await write('Mon-Fri 7-19');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('CUSTOS_ERR_ACTIVE_HOURS_INVALID');
    expect(await ok(['role', 'read', 'agent'])).toBe(shown);
    expect((await write('none')).code).toBe(0);
    expect(await ok(['role', 'show', 'agent'])).toMatch(/active_hours\s+-/);
  });

  it('a rule suspends the role; logins are refused until `role resume`; `alerts show` says what was done', async () => {
    const task = JSON.parse(await ok(['task', 'start', '--role', 'agent', '--ttl', '10m', '--json'])) as {
      token: string;
      task_id: string;
    };
    await ok(['task', 'revoke', task.task_id]);
    expect((await h.cli(['secret', 'get', 'kv/app/x'], { token: task.token })).code).not.toBe(0);
    await h.server.node.services().anomaly!.idle();

    const refused = await login();
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('CUSTOS_ERR_SUSPENDED');
    const [finding] = (JSON.parse(await ok(['alerts', 'list', '--json'])) as { alerts: { id: string }[] }).alerts;
    const shown = await ok(['alerts', 'show', finding!.id]);
    expect(shown).toMatch(/action\s+suspend-role done role=agent at /);
    expect(await ok(['role', 'show', 'agent'])).toMatch(
      new RegExp(`suspended\\s+by alert:${finding!.id} at \\S+ \\(rule dead-task-token\\)`),
    );

    expect(await ok(['alerts', 'rules'])).toMatch(/^dead-task-token\s+findings 1 .* action suspend-role /m);
    expect(await ok(['alerts', 'rules'])).toMatch(/^first-access\s+findings 0 .* action none /m);
    expect(await ok(['role', 'resume', 'agent'])).toBe('Resumed role agent\n');
    expect(await ok(['role', 'resume', 'agent'])).toBe('The role agent was not suspended\n');
    const again = await login();
    expect(again.code, again.stderr).toBe(0);
  });

  it('suspends and resumes an identity by hand', async () => {
    const identity = 'spiffe://custos.local/agent/fake-1';
    expect(await ok(['role', 'suspend', 'agent', '--identity', identity])).toBe(
      `Suspended identity ${identity} of role agent\n`,
    );
    expect(await ok(['role', 'show', 'agent'])).toMatch(new RegExp(`suspended identity\\s+${identity} by token:`));
    expect(await ok(['role', 'resume', 'agent', '--identity', identity])).toBe(
      `Resumed identity ${identity} of role agent\n`,
    );
  });
});
