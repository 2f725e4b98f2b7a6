import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useAwsEnvironment } from '../../seals/src/test-support/aws-env.js';
import { type StsWireServer, startStsWireServer } from '../../seals/src/test-support/sts-wire-server.js';
import { startCliServer } from './cli-harness.js';

/**
 * The operator and agent paths of the AWS features through the CLI, against
 * a real server and the wire-compatible local STS+IAM server: an aws-sts
 * engine and role, an AWS login method, `custos login --aws` signing with
 * the SDK default chain, and `custos creds` handing out AWS session
 * variables.
 */
describe('custos CLI: aws-sts engine and AWS logins', () => {
  let sts: StsWireServer;
  let h: Awaited<ReturnType<typeof startCliServer>>;
  let restore: () => void;

  beforeAll(async () => {
    sts = await startStsWireServer();
    sts.addRole('reports-reader');
    // One principal in the environment for both sides (same process): the
    // server's engine and the agent's login.
    restore = useAwsEnvironment(sts.engineCredentials);
    h = await startCliServer();
  });
  afterAll(async () => {
    await h?.close();
    await sts?.close();
    restore?.();
  });

  it('configures the engine, a role with a session policy file, an AWS method; logs in with --aws; issues AWS variables', async () => {
    const ok = async (args: string[], token?: string) => {
      const run = await h.cli(args, token ? { token } : {});
      expect(run.code, `${args.join(' ')}\n${run.stderr}`).toBe(0);
      return run.stdout;
    };
    await ok([
      'engine',
      'add',
      'aws',
      '--type',
      'aws-sts',
      '--region',
      'us-east-1',
      '--endpoint',
      sts.endpoint,
      '--iam-endpoint',
      sts.endpoint,
    ]);
    const policyFile = join(h.dir, 'session-policy.json');
    writeFileSync(
      policyFile,
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
      }),
    );
    await ok([
      'engine',
      'role',
      'write',
      'aws/reports',
      '--role-arn',
      `arn:aws:iam::${sts.account}:role/reports-reader`,
      '--session-policy',
      `@${policyFile}`,
      '--max-ttl',
      '1h',
    ]);
    expect(await ok(['engine', 'read', 'aws'])).toContain(sts.endpoint);
    const roleShown = await ok(['engine', 'role', 'read', 'aws/reports']);
    expect(roleShown).toContain(`arn:aws:iam::${sts.account}:role/reports-reader`);
    expect(roleShown).toContain('s3:GetObject');
    const policyPath = join(h.dir, 'issue.cedar');
    writeFileSync(
      policyPath,
      'permit(principal, action == Custos::Action::"issue", resource == Custos::Path::"aws/reports");',
    );
    await ok(['policy', 'write', 'aws-issue', policyPath]);
    await ok(['role', 'write', 'reporter', '--policy', 'aws-issue', '--max-ttl', '30m', '--auth', 'aws']);
    await ok([
      'auth',
      'aws',
      'add',
      'prod',
      '--server-id',
      'custos-cli.test',
      '--sts-endpoint',
      sts.endpoint,
      '--bind',
      `reporter:account=${sts.account},arn=arn:aws:iam::${sts.account}:user/custos-engine`,
    ]);
    expect(await ok(['auth', 'aws', 'read', 'prod'])).toContain('custos-cli.test');

    const token = (
      await ok([
        'login',
        '--aws',
        '--role',
        'reporter',
        '--server-id',
        'custos-cli.test',
        '--sts-endpoint',
        sts.endpoint,
        '--ttl',
        '20m',
      ])
    ).trim();
    expect(token.split('.')).toHaveLength(3);
    const env = await ok(['creds', 'aws/reports', '--format', 'env'], token);
    expect(env).toMatch(
      /^AWS_ACCESS_KEY_ID=ASIA[0-9A-Z]+\nAWS_SECRET_ACCESS_KEY=\S+\nAWS_SESSION_TOKEN=\S+\nCUSTOS_LEASE_ID=lea_\S+\n$/,
    );
    expect(sts.assumeRoleCalls.at(-1)?.durationSeconds).toBeLessThanOrEqual(1200);

    // A login signed for another server id is refused.
    const other = await h.cli([
      'login',
      '--aws',
      '--role',
      'reporter',
      '--server-id',
      'custos-other',
      '--sts-endpoint',
      sts.endpoint,
    ]);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain('CUSTOS_ERR_UNAUTHENTICATED');
  });
});
