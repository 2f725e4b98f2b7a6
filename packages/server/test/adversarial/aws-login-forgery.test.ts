import { signAwsLoginRequest } from '@custos/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsLoginFixture } from '../aws-login-fixture.js';
import { auditEvents } from '../test-server.js';

/**
 * Attacks on `POST /v1/auth/aws/login`: requests signed for another custos,
 * forged or replayed signatures, and requests that try to make custos send
 * them somewhere else or as another STS action. Each is refused with the
 * plain 401 (the reason only in the audit), and — where custos can tell
 * before asking — without any request reaching STS.
 */
describe('adversarial: AWS login forgery, replay and redirection', () => {
  let f: Awaited<ReturnType<typeof startAwsLoginFixture>>;
  beforeAll(async () => {
    f = await startAwsLoginFixture();
  });
  afterAll(async () => {
    await f?.close();
  });
  const sign = (overrides: Partial<Parameters<typeof signAwsLoginRequest>[0]> = {}) =>
    signAwsLoginRequest({
      credentials: f.appSession,
      serverId: 'custos-test.example',
      stsEndpoint: f.sts.endpoint,
      ...overrides,
    });
  const login = (payload: object) => f.s.call({ method: 'POST', url: '/v1/auth/aws/login', token: null, payload });
  const refusedWithoutSts = async (payload: object, reason: string) => {
    const before = f.sts.callerIdentityCalls.length;
    const response = await login(payload);
    expect(response.statusCode).toBe(401);
    expect(response.json().error.code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    expect(f.sts.callerIdentityCalls.length).toBe(before);
    const events = await auditEvents(f.s.storage);
    expect(events.at(-1)).toMatchObject({ decision: 'deny', reason });
    return response;
  };

  it('a request signed for another custos server is refused before STS is asked', async () => {
    await refusedWithoutSts(
      { role: 'aws-app', request: sign({ serverId: 'custos-other.example' }) },
      'server_id_mismatch',
    );
  });

  it('a server id header swapped in after signing is refused (STS would fail the signature)', async () => {
    const request = sign({ serverId: 'custos-other.example' });
    request.headers['x-custos-server-id'] = 'custos-test.example';
    const response = await login({ role: 'aws-app', request });
    expect(response.statusCode).toBe(401);
  });

  it('a request whose server id is not among the signed headers is refused', async () => {
    const request = sign();
    request.headers.authorization = request.headers.authorization!.replace(';x-custos-server-id', '');
    await refusedWithoutSts({ role: 'aws-app', request }, 'server_id_not_signed');
  });

  it('a replayed signed request is refused the second time, without a second call to STS', async () => {
    const request = sign();
    expect((await login({ role: 'aws-app', request })).statusCode).toBe(200);
    await refusedWithoutSts({ role: 'aws-app', request }, 'replayed');
  });

  it('a forged signature is refused (STS answers SignatureDoesNotMatch)', async () => {
    const request = sign();
    request.headers.authorization = request.headers.authorization!.replace(
      /Signature=([0-9a-f])/,
      (_m, c) => `Signature=${c === '0' ? '1' : '0'}`,
    );
    const response = await login({ role: 'aws-app', request });
    expect(response.statusCode).toBe(401);
    expect((await auditEvents(f.s.storage)).at(-1)).toMatchObject({ reason: 'sts_refused' });
  });

  it('a request signed for another host is never sent there, nor to STS', async () => {
    await refusedWithoutSts(
      { role: 'aws-app', request: sign({ stsEndpoint: 'https://attacker.example' }) },
      'host_mismatch',
    );
    // The login body has no URL: one given is a schema violation, not a destination.
    const withUrl = await login({ role: 'aws-app', request: { ...sign(), url: 'https://attacker.example/' } });
    expect(withUrl.statusCode).toBe(400);
  });

  it('a request for another STS action is refused: custos is no signing oracle', async () => {
    const request = sign();
    await refusedWithoutSts(
      {
        role: 'aws-app',
        request: { ...request, body: 'Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::1:role/x' },
      },
      'not_get_caller_identity',
    );
  });

  it('a signature older than five minutes is refused', async () => {
    await refusedWithoutSts(
      { role: 'aws-app', request: sign({ now: new Date(Date.now() - 10 * 60_000) }) },
      'stale_signature',
    );
  });

  it('no AWS secret of the caller reaches the audit', async () => {
    const audit = JSON.stringify(await auditEvents(f.s.storage));
    expect(audit).not.toContain(f.appSession.secretAccessKey);
    expect(audit).not.toContain(f.appSession.sessionToken);
  });
});

describe('adversarial: binding a role in an AWS method without the role’s own grant', () => {
  let f: Awaited<ReturnType<typeof startAwsLoginFixture>>;
  beforeAll(async () => {
    f = await startAwsLoginFixture();
  });
  afterAll(async () => {
    await f?.close();
  });

  it('an operator who may write AWS methods but not the role cannot let AWS principals into it', async () => {
    const policy = await f.s.call({
      method: 'PUT',
      url: '/v1/policies/aws-method-admin',
      payload: {
        policy: 'permit(principal, action == Custos::Action::"admin", resource in Custos::Path::"sys/auth/aws/");',
      },
    });
    expect(policy.statusCode).toBe(200);
    const token = (
      await f.s.call({
        method: 'POST',
        url: '/v1/auth/token/create',
        payload: { policies: ['aws-method-admin'], ttl: '10m' },
      })
    ).json().token as string;
    expect(token).toBeTruthy();
    const response = await f.s.call({
      method: 'PUT',
      url: '/v1/auth/aws/methods/sneaky',
      token,
      payload: { server_id: 'custos-test.example', bindings: [{ role: 'aws-app', accounts: ['999988887777'] }] },
    });
    expect(response.statusCode).toBe(403);
    expect((await auditEvents(f.s.storage)).at(-1)).toMatchObject({ reason: 'aws_binding_requires_role_write' });
    expect((await f.s.call({ method: 'GET', url: '/v1/auth/aws/methods/sneaky' })).statusCode).toBe(404);
  });
});
