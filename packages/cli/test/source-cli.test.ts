import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useAwsEnvironment } from '../../seals/src/test-support/aws-env.js';
import {
  type SecretsManagerWireServer,
  startSecretsManagerWireServer,
} from '../../seals/src/test-support/secrets-manager-wire-server.js';
import { startCliServer } from './cli-harness.js';

const fakeValue = () => `fake${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

// The CLI against a real server (its own source wiring, the AWS SDK's
// default chain from the environment) and a wire-compatible Secrets Manager.
describe('custos source add | list | show | refresh | import | delete', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  let sm: SecretsManagerWireServer;
  let restore: () => void;
  const ok = async (args: string[]) => {
    const run = await h.cli(args);
    if (run.code !== 0) throw new Error(`custos ${args.join(' ')} failed: ${run.stderr}`);
    return run.stdout;
  };

  beforeAll(async () => {
    sm = await startSecretsManagerWireServer();
    restore = useAwsEnvironment(sm.credentials);
    h = await startCliServer();
  });
  afterAll(async () => {
    await h?.close();
    await sm?.close();
    restore?.();
  });

  it('adds an AWS source, reads through it with `secret get`, refreshes, imports and deletes it', async () => {
    const password = fakeValue();
    sm.putSecret('agents/db', JSON.stringify({ username: 'svc', password }));
    const added = await ok([
      'source',
      'add',
      'aws-prod',
      '--type',
      'aws-secrets-manager',
      '--region',
      sm.region,
      '--prefix',
      'agents/',
      '--endpoint',
      sm.endpoint,
      '--cache-ttl',
      '1m',
      '--timeout',
      '2s',
    ]);
    expect(added).toBe('Source aws-prod (aws-secrets-manager) mounted at kv/aws-prod/\n');
    expect(await ok(['source', 'list'])).toBe('aws-prod\n');
    const shown = await ok(['source', 'show', 'aws-prod']);
    expect(shown).toContain('agents/');
    expect(shown).toContain('60s');
    expect(shown).not.toContain(sm.credentials.accessKeyId);
    expect(await ok(['secret', 'get', 'kv/aws-prod/db', '--field', 'password'])).toContain(password);

    const next = fakeValue();
    sm.putSecret('agents/db', JSON.stringify({ username: 'svc', password: next }));
    expect(await ok(['secret', 'get', 'kv/aws-prod/db', '--field', 'password'])).toContain(password);
    expect(await ok(['source', 'refresh', 'aws-prod'])).toMatch(/^Refreshed source aws-prod/);
    expect(await ok(['secret', 'get', 'kv/aws-prod/db', '--field', 'password'])).toContain(next);

    const imported = await ok(['source', 'import', 'aws-prod', '--path', 'kv/copies']);
    expect(imported).toContain('imported kv/copies/db');
    expect(await ok(['secret', 'get', 'kv/copies/db', '--field', 'password'])).toContain(next);

    sm.faults.deny = true;
    await ok(['source', 'refresh', 'aws-prod']);
    const denied = await h.cli(['secret', 'get', 'kv/aws-prod/db']);
    sm.faults.deny = false;
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/CUSTOS_ERR_SOURCE_ACCESS_DENIED .*"aws-prod"/);
    expect(denied.stderr).not.toContain(sm.account);

    expect(await ok(['source', 'delete', 'aws-prod'])).toBe('Deleted source aws-prod\n');
    const gone = await h.cli(['source', 'show', 'aws-prod']);
    expect(gone.stderr).toMatch(/^custos: CUSTOS_ERR_SOURCE_NOT_FOUND /);
  });

  it('refuses a bad cache TTL before calling the server', async () => {
    const run = await h.cli([
      'source',
      'add',
      'x',
      '--type',
      'aws-secrets-manager',
      '--region',
      'eu-west-1',
      '--cache-ttl',
      'soon',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('CUSTOS_ERR_INVALID_TTL');
  });
});
