import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { expect } from 'vitest';
import {
  type StsWireServer,
  startStsWireServer,
  type TestPrincipal,
} from '../../seals/src/test-support/sts-wire-server.js';
import { startTestServer, type TestServer } from './test-server.js';

/** Shared set-up of the AWS login tests: an STS wire server, a custos with one method bound to role `aws-app`. */
export async function startAwsLoginFixture(): Promise<{
  sts: StsWireServer;
  s: TestServer;
  appSession: { accessKeyId: string; secretAccessKey: string; sessionToken: string };
  stranger: TestPrincipal;
  close(): Promise<void>;
}> {
  const sts = await startStsWireServer();
  sts.addRole('app-runner');
  const workload = sts.addUser('workload');
  const stranger = sts.addUser('stranger', { account: '999988887777' });
  // The workload's own session (an instance or task role would hand it the same shape).
  const client = new STSClient({
    region: 'us-east-1',
    endpoint: sts.endpoint,
    credentials: { accessKeyId: workload.accessKeyId, secretAccessKey: workload.secretAccessKey },
  });
  const out = await client.send(
    new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${sts.account}:role/app-runner`, RoleSessionName: 'pod-7' }),
  );
  client.destroy();
  const s = await startTestServer('sqlite');
  const policy = await s.call({
    method: 'PUT',
    url: '/v1/policies/none',
    payload: { policy: 'forbid(principal, action, resource) when { false };' },
  });
  expect(policy.statusCode).toBe(200);
  for (const [name, auth] of [
    ['aws-app', ['aws']],
    ['bootstrap-only', ['bootstrap']],
  ] as const) {
    const role = await s.call({
      method: 'PUT',
      url: `/v1/roles/${name}`,
      payload: { policies: ['none'], max_ttl: '15m', auth },
    });
    expect(role.statusCode).toBe(200);
  }
  const method = await s.call({
    method: 'PUT',
    url: '/v1/auth/aws/methods/prod',
    payload: {
      server_id: 'custos-test.example',
      sts_endpoint: sts.endpoint,
      bindings: [
        { role: 'aws-app', accounts: [sts.account], principal_arns: [`arn:aws:iam::${sts.account}:role/app-*`] },
        { role: 'bootstrap-only', accounts: [sts.account] },
      ],
    },
  });
  expect(method.statusCode).toBe(200);
  const c = out.Credentials!;
  return {
    sts,
    s,
    stranger,
    appSession: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! },
    close: async () => {
      await s.close();
      await sts.close();
    },
  };
}
