import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

// `custos alerts list|show|ack` against a real server: a revoked task's token
// is used again, the engine raises a finding, and the operator sees and
// acknowledges it from the command line.

describe('custos alerts', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
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
  });
  afterAll(async () => {
    await h?.close();
  });

  it('lists, shows and acknowledges the finding a dead task token raised', async () => {
    expect(await ok(['alerts', 'list'])).toBe('No alerts\n');
    const task = JSON.parse(await ok(['task', 'start', '--role', 'agent', '--ttl', '10m', '--json'])) as {
      token: string;
      task_id: string;
    };
    await ok(['task', 'revoke', task.task_id]);
    const refused = await h.cli(['secret', 'get', 'kv/app/x'], { token: task.token });
    expect(refused.code).not.toBe(0);
    await h.server.node.services().anomaly!.idle();

    const listed = JSON.parse(await ok(['alerts', 'list', '--json'])) as { alerts: { id: string; rule: string }[] };
    expect(listed.alerts.map((a) => a.rule)).toEqual(['dead-task-token']);
    const id = listed.alerts[0]!.id;
    const line = await ok(['alerts', 'list', '--state', 'open', '--severity', 'high']);
    expect(line).toContain(id);
    expect(line).toContain(`task_id=${task.task_id}`);

    const shown = await ok(['alerts', 'show', id]);
    expect(shown).toMatch(/rule\s+dead-task-token/);
    expect(shown).toMatch(/evidence\s+seq \d+/);
    expect(shown).toContain('after the task was revoked');

    expect(await ok(['alerts', 'ack', id])).toMatch(/^Acknowledged al_/);
    expect(await ok(['alerts', 'list', '--state', 'open'])).toBe('No alerts\n');
    expect(await ok(['alerts', 'show', id])).toMatch(/state\s+acked by acc_/);

    const rules = await ok(['alerts', 'rules']);
    expect(rules).toMatch(/^dead-task-token\s+findings 1\s+errors 0\s+events \d+\s+suppressed 0/m);
    expect(rules).toMatch(/^first-access\s+findings 0/m);
    expect(rules).toMatch(/queued \d+\s+dropped 0\s+lost 0/);
    const json = JSON.parse(await ok(['alerts', 'rules', '--json']));
    expect(json.rules.find((r: { rule: string }) => r.rule === 'denied-spike').config).toMatchObject({ minDenied: 20 });
  });

  it('replays the rules over stored history and reports what they would have raised, storing nothing', async () => {
    const listed = await ok(['alerts', 'list', '--json']);
    const text = await ok(['alerts', 'replay', '--since', '1h']);
    expect(text).toMatch(
      /^Replayed \d+ audit records \(seq \d+–\d+\) from .* after learning from \d+ earlier records$/m,
    );
    expect(text).toMatch(/^dead-task-token\s+would raise 1\s+suppressed 0\s+errors 0$/m);
    expect(text).toMatch(/ high {6}dead-task-token {2}task_id=/);
    expect(text).toContain('Nothing was stored or acted on.');
    const json = JSON.parse(await ok(['alerts', 'replay', '--since', '1h', '--rule', 'dead-task-token', '--json']));
    expect(json).toMatchObject({
      complete: true,
      findings_total: 1,
      rules: [{ rule: 'dead-task-token', findings: 1 }],
    });
    expect(await ok(['alerts', 'list', '--json'])).toBe(listed);
    const bad = await h.cli(['alerts', 'replay', '--since', 'yesterday']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('CUSTOS_ERR_VALIDATION');
    expect(bad.stderr).toContain('since is a duration back from now');
    const usage = await h.cli(['alerts', 'replay', '--since', '1h', '--limit', 'lots']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--limit is a whole number');
  });

  it('refuses a malformed id as a usage error, before any request', async () => {
    const run = await h.cli(['alerts', 'show', '../../sys/seal']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('not an alert id');
  });
});
