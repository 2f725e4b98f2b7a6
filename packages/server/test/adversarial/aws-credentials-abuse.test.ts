import { createAwsStsEngine } from '@custos/engines';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useAwsEnvironment } from '../../../seals/src/test-support/aws-env.js';
import { type StsWireServer, startStsWireServer } from '../../../seals/src/test-support/sts-wire-server.js';
import { startTestServer, type TestServer } from '../test-server.js';

/**
 * Attacks on per-task AWS credentials (`POST /v1/creds/<aws-sts engine>/<role>`
 * and the aws-sts role configuration): a task asking for a role it was not
 * given, a TTL beyond its task, a role write that would point custos's AWS
 * principal at another IAM role without the engine's grant, and an endpoint
 * the egress policy refuses.
 */
describe('adversarial: per-task AWS credentials', () => {
  let sts: StsWireServer;
  let s: TestServer;
  let restore: () => void;
  let roleArn: string;

  const taskOf = async (role: string, ttl: string) => {
    const created = await s.call({ method: 'POST', url: `/v1/roles/${role}/bootstrap`, payload: { ttl: '5m' } });
    const response = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: created.json().token, ttl },
    });
    expect(response.statusCode).toBe(200);
    return response.json() as { token: string; task_id: string };
  };

  beforeAll(async () => {
    sts = await startStsWireServer();
    roleArn = sts.addRole('deployer', { maxSessionDuration: 43_200 });
    sts.addRole('admin');
    restore = useAwsEnvironment(sts.engineCredentials);
    s = await startTestServer('sqlite', { awsStsEngineFactory: createAwsStsEngine });
    const put = (url: string, payload: object) => s.call({ method: 'PUT', url, payload });
    expect(
      (
        await put('/v1/engines/aws', {
          type: 'aws-sts',
          region: 'us-east-1',
          sts_endpoint: sts.endpoint,
          iam_endpoint: sts.endpoint,
        })
      ).statusCode,
    ).toBe(200);
    expect((await put('/v1/engines/aws/roles/deploy', { role_arn: roleArn, max_ttl: '12h' })).statusCode).toBe(200);
    expect(
      (
        await put('/v1/policies/deploy', {
          policy: 'permit(principal, action == Custos::Action::"issue", resource == Custos::Path::"aws/deploy");',
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (await put('/v1/policies/nothing', { policy: 'forbid(principal, action, resource) when { false };' })).statusCode,
    ).toBe(200);
    // A role-writer who may write aws roles but holds no grant on the engine itself.
    expect(
      (
        await put('/v1/policies/role-writer', {
          policy:
            'permit(principal, action == Custos::Action::"write", resource in Custos::Path::"sys/engines/aws/roles/");',
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (await put('/v1/roles/deployer', { policies: ['deploy'], max_ttl: '1h', auth: ['bootstrap'] })).statusCode,
    ).toBe(200);
    expect(
      (await put('/v1/roles/bystander', { policies: ['nothing'], max_ttl: '1h', auth: ['bootstrap'] })).statusCode,
    ).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
    await sts?.close();
    restore?.();
  });

  it('a task whose role does not grant the AWS role gets nothing, and STS is never asked', async () => {
    const before = sts.assumeRoleCalls.length;
    const task = await taskOf('bystander', '30m');
    const response = await s.call({ method: 'POST', url: '/v1/creds/aws/deploy', token: task.token, payload: {} });
    expect(response.statusCode).toBe(403);
    expect(sts.assumeRoleCalls.length).toBe(before);
  });

  it('a TTL beyond the task is capped at the task, whatever the role’s and the IAM role’s maxima', async () => {
    const task = await taskOf('deployer', '20m');
    const response = await s.call({
      method: 'POST',
      url: '/v1/creds/aws/deploy',
      token: task.token,
      payload: { ttl: '11h' },
    });
    expect(response.statusCode).toBe(200);
    const call = sts.assumeRoleCalls.at(-1)!;
    expect(call.durationSeconds).toBeLessThanOrEqual(1200);
    expect(new Date(response.json().expire_time).getTime()).toBeLessThanOrEqual(Date.now() + 1_200_000);
  });

  it('a task with under 15 minutes left is refused instead of handed credentials that outlive it', async () => {
    const before = sts.assumeRoleCalls.length;
    const task = await taskOf('deployer', '14m');
    const response = await s.call({ method: 'POST', url: '/v1/creds/aws/deploy', token: task.token, payload: {} });
    expect(response.json().error.code).toBe('CUSTOS_ERR_AWS_DURATION_TOO_SHORT');
    expect(sts.assumeRoleCalls.length).toBe(before);
  });

  it('re-pointing a role at another IAM role, or changing its session policy, needs the engine’s own grant', async () => {
    const token = (
      await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: ['role-writer'], ttl: '10m' } })
    ).json().token as string;
    expect(token).toBeTruthy();
    for (const payload of [
      { role_arn: `arn:aws:iam::${sts.account}:role/admin` },
      { session_policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}' },
    ]) {
      const response = await s.call({ method: 'PUT', url: '/v1/engines/aws/roles/deploy', token, payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(403);
    }
    const role = (await s.call({ method: 'GET', url: '/v1/engines/aws/roles/deploy' })).json();
    expect(role.aws).toEqual({ role_arn: roleArn });
  });

  it('an STS endpoint the egress policy refuses is refused when the engine is written', async () => {
    const response = await s.call({
      method: 'PUT',
      url: '/v1/engines/aws-meta',
      payload: { type: 'aws-sts', region: 'us-east-1', sts_endpoint: 'http://169.254.169.254/' },
    });
    expect(response.json().error.code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
  });
});
