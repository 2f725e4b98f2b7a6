import { EgressPolicy } from '@custos/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useAwsEnvironment } from '../../../seals/src/test-support/aws-env.js';
import { type StsWireServer, startStsWireServer } from '../../../seals/src/test-support/sts-wire-server.js';
import { createAwsStsEngine } from './aws-sts-engine.js';

/** The engine alone against the local wire STS (not AWS): timeouts, retries, and what its errors carry. */
describe('AwsStsEngine faults', () => {
  let sts: StsWireServer;
  let restore: () => void;
  let roleArn: string;
  const open = (timeoutMs = 10_000) =>
    createAwsStsEngine({
      region: 'us-east-1',
      stsEndpoint: sts.endpoint,
      iamEndpoint: sts.endpoint,
      egress: new EgressPolicy({ allow: ['127.0.0.1'], timeoutMs }),
    });
  const request = () => ({
    roleArn,
    sessionName: 'custos-test',
    sourceIdentity: 'tsk_test',
    tags: { custos_task: 'tsk_test' },
    durationSeconds: 900,
  });

  beforeAll(async () => {
    sts = await startStsWireServer();
    roleArn = sts.addRole('r');
    restore = useAwsEnvironment(sts.engineCredentials);
  });
  afterEach(() => {
    Object.assign(sts.faults, { throttle: 0, delayMs: 0, denyAssumeRole: false, denyPutRolePolicy: false });
  });
  afterAll(async () => {
    await sts.close();
    restore();
  });

  it('an STS that does not answer in time is CUSTOS_ERR_AWS_UNAVAILABLE, within the egress deadline', async () => {
    sts.faults.delayMs = 3_000;
    const engine = open(300);
    const started = Date.now();
    const error = await engine.assumeRole(request()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CUSTOS_ERR_AWS_UNAVAILABLE' });
    // Three attempts of 300 ms plus backoff, never the 3 s the server would take.
    expect(Date.now() - started).toBeLessThan(2_900);
    await engine.close();
  });

  it('throttling is retried; an endpoint outside the egress policy is refused as such', async () => {
    sts.faults.throttle = 2;
    const engine = open();
    const credentials = await engine.assumeRole(request());
    expect(credentials.accessKeyId).toMatch(/^ASIA/);
    await engine.close();
    const refused = createAwsStsEngine({ region: 'us-east-1', stsEndpoint: sts.endpoint, egress: new EgressPolicy() });
    expect(await refused.verifyConnection().catch((e: unknown) => e)).toMatchObject({
      code: 'CUSTOS_ERR_EGRESS_REFUSED',
    });
    await refused.close();
  });

  it('an error never carries the SDK’s message or a credential', async () => {
    sts.faults.denyAssumeRole = true;
    const engine = open();
    const error = (await engine.assumeRole(request()).catch((e: unknown) => e)) as Error & { cause?: unknown };
    expect(error).toMatchObject({ code: 'CUSTOS_ERR_AWS_ACCESS_DENIED' });
    expect(error.cause).toBeUndefined();
    expect(JSON.stringify(error)).not.toContain(sts.engineCredentials.accessKeyId);
    expect(String(error.message)).not.toContain('is not authorized');
    await engine.close();
  });
});
