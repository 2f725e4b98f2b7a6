import { signAwsLoginRequest } from '@custos/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestPrincipal } from '../../seals/src/test-support/sts-wire-server.js';
import { startAwsLoginFixture } from './aws-login-fixture.js';

describe('AWS IAM login (signed sts:GetCallerIdentity forwarded to the wire-compatible STS)', () => {
  let f: Awaited<ReturnType<typeof startAwsLoginFixture>>;
  beforeAll(async () => {
    f = await startAwsLoginFixture();
  });
  afterAll(async () => {
    await f?.close();
  });
  const sign = (credentials: TestPrincipal | typeof f.appSession = f.appSession) =>
    signAwsLoginRequest({ credentials, serverId: 'custos-test.example', stsEndpoint: f.sts.endpoint });
  const login = (payload: object) => f.s.call({ method: 'POST', url: '/v1/auth/aws/login', token: null, payload });

  it('logs an assumed-role session in: the role ARN normalised, the account bound, a task started', async () => {
    const before = f.sts.callerIdentityCalls.length;
    const response = await login({ role: 'aws-app', request: sign(), ttl: '5m' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.token).toBeTruthy();
    expect(body.aws).toEqual({
      arn: `arn:aws:sts::${f.sts.account}:assumed-role/app-runner/pod-7`,
      account: f.sts.account,
    });
    // STS saw the caller's own signed request, server id included, and verified it.
    const seen = f.sts.callerIdentityCalls.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers['x-custos-server-id']).toBe('custos-test.example');
    const task = await f.s.call({ method: 'GET', url: `/v1/tasks/${body.task_id}` });
    expect(task.json().sub).toBe(`aws:arn:aws:sts::${f.sts.account}:assumed-role/app-runner/pod-7`);
  });

  it('refuses a principal no binding admits (another account, a user where a role is bound)', async () => {
    expect((await login({ role: 'aws-app', request: sign(f.stranger) })).statusCode).toBe(401);
    const user = f.sts.addUser('ops');
    expect((await login({ role: 'aws-app', request: sign(user) })).statusCode).toBe(401);
    // A binding exists for bootstrap-only, but the role does not allow aws logins.
    expect((await login({ role: 'bootstrap-only', request: sign() })).statusCode).toBe(401);
  });
});
