import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { createAwsStsEngine } from '@custos/engines';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useAwsEnvironment } from '../../seals/src/test-support/aws-env.js';
import { type StsWireServer, startStsWireServer } from '../../seals/src/test-support/sts-wire-server.js';
import { auditEvents, startTestServer, type TestServer } from './test-server.js';

interface AwsCreds {
  lease_id: string;
  username: string;
  password: string;
  session_token: string;
  assumed_role_arn: string;
  expire_time: string;
  ttl_seconds: number;
  task_id: string;
}

/**
 * The aws-sts engine against the wire-compatible local STS+IAM server (not
 * against AWS): custos's principal from the SDK default chain, per-task
 * AssumeRole with the task as SourceIdentity and tags, the session policy of
 * the role, durations capped by the task, and revocation as a Deny that the
 * server then enforces on the revoked session's next signed request.
 */
describe('aws-sts engine: per-task AWS credentials', () => {
  let sts: StsWireServer;
  let s: TestServer;
  let restoreEnv: () => void;
  let roleArn: string;
  const sessionPolicy = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::reports/*'] }],
  };

  const login = async (ttl: string): Promise<{ token: string; task_id: string }> => {
    const created = await s.call({ method: 'POST', url: '/v1/roles/aws-agent/bootstrap', payload: { ttl: '5m' } });
    expect(created.statusCode).toBe(200);
    const response = await s.call({
      method: 'POST',
      url: '/v1/auth/bootstrap/login',
      token: null,
      payload: { token: created.json().token, ttl },
    });
    expect(response.statusCode).toBe(200);
    return response.json();
  };
  const creds = (token: string, payload: object = {}) =>
    s.call({ method: 'POST', url: '/v1/creds/aws/reports', token, payload });
  /** A further signed request with the session's credentials (iam:GetRole, which a Deny can refuse). */
  const useSession = async (c: AwsCreds): Promise<string> => {
    const iam = new IAMClient({
      region: 'us-east-1',
      endpoint: sts.endpoint,
      maxAttempts: 1,
      credentials: { accessKeyId: c.username, secretAccessKey: c.password, sessionToken: c.session_token },
    });
    try {
      await iam.send(new GetRoleCommand({ RoleName: 'reports-reader' }));
      return 'allowed';
    } catch (error) {
      return (error as Error).name;
    } finally {
      iam.destroy();
    }
  };

  beforeAll(async () => {
    sts = await startStsWireServer();
    roleArn = sts.addRole('reports-reader', { maxSessionDuration: 7200 });
    restoreEnv = useAwsEnvironment(sts.engineCredentials);
    s = await startTestServer('sqlite', { awsStsEngineFactory: createAwsStsEngine });
    expect(
      (
        await s.call({
          method: 'PUT',
          url: '/v1/policies/aws-issue',
          payload: {
            policy: 'permit(principal, action == Custos::Action::"issue", resource in Custos::Path::"aws/");',
          },
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (
        await s.call({
          method: 'PUT',
          url: '/v1/roles/aws-agent',
          payload: { policies: ['aws-issue'], max_ttl: '2h', auth: ['bootstrap'] },
        })
      ).statusCode,
    ).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
    await sts?.close();
    restoreEnv?.();
  });

  it('adds the engine with no credential in its configuration (GetCallerIdentity with the default chain)', async () => {
    const added = await s.call({
      method: 'PUT',
      url: '/v1/engines/aws',
      payload: { type: 'aws-sts', region: 'us-east-1', sts_endpoint: sts.endpoint, iam_endpoint: sts.endpoint },
    });
    expect(added.statusCode).toBe(200);
    expect(added.json()).toMatchObject({ name: 'aws', type: 'aws-sts', aws: { region: 'us-east-1' } });
    expect(added.body).not.toContain(sts.engineCredentials.secretAccessKey);
    const role = await s.call({
      method: 'PUT',
      url: '/v1/engines/aws/roles/reports',
      payload: { role_arn: roleArn, session_policy: JSON.stringify(sessionPolicy, null, 2), max_ttl: '1h' },
    });
    expect(role.statusCode).toBe(200);
    expect(role.json().aws).toEqual({ role_arn: roleArn, session_policy: JSON.stringify(sessionPolicy) });
  });

  it('refuses an aws-sts role without a role ARN, with an invalid policy, or under 15 minutes', async () => {
    for (const payload of [
      { session_policy: '{}' },
      { role_arn: 'arn:aws:iam::1:role/x' },
      { role_arn: roleArn, session_policy: '{not json' },
      { role_arn: roleArn, session_policy: '{"Version":"2012-10-17"}' },
      { role_arn: roleArn, max_ttl: '10m', default_ttl: '5m' },
      { role_arn: roleArn, max_ttl: '13h' },
      { role_arn: roleArn, creation_statements: ['SELECT 1'] },
    ]) {
      const response = await s.call({ method: 'PUT', url: '/v1/engines/aws/roles/bad', payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(400);
    }
    expect((await s.call({ method: 'GET', url: '/v1/engines/aws/roles/bad' })).statusCode).toBe(404);
  });

  it('issues one AssumeRole session per task: session policy, SourceIdentity, tags, duration within the task', async () => {
    const task = await login('30m');
    const response = await creds(task.token);
    expect(response.statusCode).toBe(200);
    const c = response.json() as AwsCreds;
    expect(c.username).toMatch(/^ASIA/);
    expect(c.session_token).toBeTruthy();
    expect(c.assumed_role_arn).toBe(`arn:aws:sts::${sts.account}:assumed-role/reports-reader/custos-${task.task_id}`);
    const call = sts.assumeRoleCalls.find((a) => a.accessKeyId === c.username);
    expect(call).toMatchObject({
      callerAccessKeyId: sts.engineCredentials.accessKeyId,
      roleArn,
      sessionName: `custos-${task.task_id}`,
      sourceIdentity: task.task_id,
      tags: { custos_task: task.task_id, custos_lease: c.lease_id, custos_role: 'reports' },
      policy: JSON.stringify(sessionPolicy),
    });
    // Role default TTL is 1h; the task has 30 minutes: the session ends with the task.
    expect(call!.durationSeconds).toBeLessThanOrEqual(1800);
    expect(call!.durationSeconds).toBeGreaterThan(1700);
    expect(await useSession(c)).toBe('allowed');
    // The lease shows the access key id (an identifier), never the secret or the token.
    const lease = await s.call({ method: 'GET', url: `/v1/leases/${c.lease_id}` });
    expect(lease.json()).toMatchObject({ username: c.username, task_id: task.task_id });
    expect(lease.body).not.toContain(c.password);
    expect(lease.body).not.toContain(c.session_token);
  });

  it('caps a TTL asked beyond the task at the task; refuses under AWS’s 900 s minimum rather than outlive the task', async () => {
    const task = await login('20m');
    const long = await creds(task.token, { ttl: '1h' });
    expect(long.statusCode).toBe(200);
    expect(long.json().ttl_seconds).toBeLessThanOrEqual(1200);
    const short = await login('10m');
    const refused = await creds(short.token);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('CUSTOS_ERR_AWS_DURATION_TOO_SHORT');
    const beyondRole = await creds(task.token, { ttl: '3h' });
    expect(beyondRole.statusCode).toBe(400);
  });

  it('lease revoke denies that session (and only it) through the role’s inline policy; renewal is refused', async () => {
    const a = await login('30m');
    const b = await login('30m');
    const ca = (await creds(a.token)).json() as AwsCreds;
    const cb = (await creds(b.token)).json() as AwsCreds;
    const renew = await s.call({ method: 'POST', url: `/v1/leases/${ca.lease_id}/renew`, payload: {} });
    expect(renew.json().error.code).toBe('CUSTOS_ERR_AWS_LEASE_NOT_RENEWABLE');
    const revoked = await s.call({ method: 'POST', url: `/v1/leases/${ca.lease_id}/revoke` });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json().state).toBe('revoked');
    const document = JSON.parse(sts.rolePolicies('reports-reader').get('custos-revoked-sessions') ?? '{}');
    expect(document.Statement[0]).toMatchObject({
      Effect: 'Deny',
      Condition: { StringEquals: { 'aws:PrincipalTag/custos_lease': [ca.lease_id] } },
    });
    expect(await useSession(ca)).toBe('AccessDenied');
    expect(await useSession(cb)).toBe('allowed');
  });

  it('ending a task denies its sessions (the task-end cascade)', async () => {
    const task = await login('30m');
    const c = (await creds(task.token)).json() as AwsCreds;
    expect(await useSession(c)).toBe('allowed');
    expect((await s.call({ method: 'POST', url: `/v1/tasks/${task.task_id}/revoke` })).statusCode).toBe(200);
    await expect.poll(() => useSession(c), { timeout: 5_000 }).toBe('AccessDenied');
    const lease = await s.call({ method: 'GET', url: `/v1/leases/${c.lease_id}` });
    expect(lease.json().state).toBe('revoked');
  });

  it('STS faults: throttling retried, persistent throttling and access denied as codes; no secret anywhere', async () => {
    const task = await login('1h');
    sts.faults.throttle = 2;
    expect((await creds(task.token)).statusCode).toBe(200);
    sts.faults.throttle = Number.POSITIVE_INFINITY;
    const throttled = await creds(task.token);
    sts.faults.throttle = 0;
    expect(throttled.statusCode).toBe(503);
    expect(throttled.json().error.code).toBe('CUSTOS_ERR_AWS_UNAVAILABLE');
    sts.faults.denyAssumeRole = true;
    const denied = await creds(task.token);
    sts.faults.denyAssumeRole = false;
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe('CUSTOS_ERR_AWS_ACCESS_DENIED');
    expect(denied.json().error.message).toContain(roleArn);
    // A revocation IAM refuses stays scheduled, reported, and the lease is not claimed revoked.
    const c = (await creds(task.token)).json() as AwsCreds;
    sts.faults.denyPutRolePolicy = true;
    const failed = await s.call({ method: 'POST', url: `/v1/leases/${c.lease_id}/revoke` });
    sts.faults.denyPutRolePolicy = false;
    expect(failed.json().error.code).toBe('CUSTOS_ERR_AWS_ACCESS_DENIED');
    const lease = (await s.call({ method: 'GET', url: `/v1/leases/${c.lease_id}` })).json();
    expect(lease).toMatchObject({ state: 'revoking', last_error: 'CUSTOS_ERR_AWS_ACCESS_DENIED' });
    expect(await useSession(c)).toBe('allowed');
    expect((await s.call({ method: 'POST', url: `/v1/leases/${c.lease_id}/revoke` })).statusCode).toBe(200);
    expect(await useSession(c)).toBe('AccessDenied');

    const audit = JSON.stringify(await auditEvents(s.storage));
    const logs = [throttled.body, denied.body, failed.body].join('\n');
    for (const secret of [sts.engineCredentials.secretAccessKey, c.password, c.session_token]) {
      expect(audit).not.toContain(secret);
      expect(logs).not.toContain(secret);
    }
  });

  it('refuses to add an aws-sts engine when the default chain finds no credentials', async () => {
    const restore = useAwsEnvironment();
    try {
      const response = await s.call({
        method: 'PUT',
        url: '/v1/engines/aws-none',
        payload: { type: 'aws-sts', region: 'us-east-1', sts_endpoint: sts.endpoint },
      });
      expect(response.json().error.code).toBe('CUSTOS_ERR_AWS_NO_CREDENTIALS');
      expect(response.statusCode).toBe(503);
    } finally {
      restore();
    }
  });
});
