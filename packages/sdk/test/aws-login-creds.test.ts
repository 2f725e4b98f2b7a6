import { createAwsStsEngine } from '@custos/engines';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useAwsEnvironment } from '../../seals/src/test-support/aws-env.js';
import { type StsWireServer, startStsWireServer } from '../../seals/src/test-support/sts-wire-server.js';
import { Custos, signAwsLoginRequest } from '../src/index.js';
import { type ListeningServer, startListeningServer } from './sdk-test-server.js';

/**
 * The SDK's AWS paths against a listening custos and the wire-compatible
 * local STS (not AWS): `signAwsLoginRequest` + `loginWithAws`, and
 * `task.creds()` on an aws-sts engine — the session token exposed,
 * redacted from logs, and never renewed (AWS cannot extend a session).
 */
describe('SDK: AWS login and per-task AWS credentials', () => {
  let sts: StsWireServer;
  let s: ListeningServer;
  let restore: () => void;

  beforeAll(async () => {
    sts = await startStsWireServer();
    const roleArn = sts.addRole('reports-reader');
    restore = useAwsEnvironment(sts.engineCredentials);
    s = await startListeningServer({ awsStsEngineFactory: createAwsStsEngine });
    const put = async (url: string, payload: object) => {
      const r = await s.call({ method: 'PUT', url, payload });
      expect(r.statusCode, r.body).toBe(200);
    };
    await put('/v1/engines/aws', {
      type: 'aws-sts',
      region: 'us-east-1',
      sts_endpoint: sts.endpoint,
      iam_endpoint: sts.endpoint,
    });
    await put('/v1/engines/aws/roles/reports', { role_arn: roleArn, max_ttl: '1h' });
    await put('/v1/policies/aws-issue', {
      policy: 'permit(principal, action == Custos::Action::"issue", resource == Custos::Path::"aws/reports");',
    });
    await put('/v1/roles/reporter', { policies: ['aws-issue'], max_ttl: '30m', auth: ['aws'] });
    await put('/v1/auth/aws/methods/prod', {
      server_id: 'custos-sdk.test',
      sts_endpoint: sts.endpoint,
      bindings: [{ role: 'reporter', accounts: [sts.account] }],
    });
  });
  afterAll(async () => {
    await s?.close();
    await sts?.close();
    restore?.();
  });

  it('logs in with a signed GetCallerIdentity and gets AWS session credentials that are not renewed', async () => {
    const custos = new Custos({ address: s.address });
    const request = signAwsLoginRequest({
      credentials: sts.engineCredentials,
      serverId: 'custos-sdk.test',
      stsEndpoint: sts.endpoint,
    });
    const task = await custos.loginWithAws({ role: 'reporter', request }, { ttl: '20m' });
    const creds = await task.creds('aws/reports');
    expect(creds.username).toMatch(/^ASIA/);
    expect(creds.sessionToken).toBeTruthy();
    expect(creds.renewing).toBe(false);
    const shown = JSON.stringify(creds);
    expect(shown).not.toContain(creds.password);
    expect(shown).not.toContain(creds.sessionToken);
    expect(sts.assumeRoleCalls.at(-1)?.sourceIdentity).toBe(task.id);
    await creds.revoke();
    await task.end();
  });
});
