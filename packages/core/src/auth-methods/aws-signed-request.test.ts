import { describe, expect, it } from 'vitest';
import { IdentityRejectedError } from '../identity/index.js';
import { checkAwsLoginRequest, normalizeCallerArn } from './aws-signed-request.js';

const NOW = Date.parse('2026-12-04T12:00:00Z');
const BODY = 'Action=GetCallerIdentity&Version=2011-06-15';
const signed = (
  over: Record<string, string> = {},
  signedHeaders = 'content-type;host;x-amz-date;x-custos-server-id',
) => ({
  headers: {
    'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
    Host: 'sts.amazonaws.com',
    'X-Amz-Date': '20261204T120000Z',
    'X-Custos-Server-ID': 'custos-prod',
    Authorization: `AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261204/us-east-1/sts/aws4_request, SignedHeaders=${signedHeaders}, Signature=${'a'.repeat(64)}`,
    ...over,
  },
  body: BODY,
});
const expected = { serverId: 'custos-prod', host: 'sts.amazonaws.com', now: NOW };
const reason = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(IdentityRejectedError);
    return (error as IdentityRejectedError).auditReason;
  }
  return 'accepted';
};

describe('checkAwsLoginRequest: what custos checks before forwarding a login to STS', () => {
  it('forwards only the allow-listed headers of a well-formed request, never Host', () => {
    const out = checkAwsLoginRequest(
      { ...signed(), headers: { ...signed().headers, 'X-Forwarded-Host': 'evil' } },
      expected,
    );
    expect(Object.keys(out.headers).sort()).toEqual([
      'authorization',
      'content-type',
      'x-amz-date',
      'x-custos-server-id',
    ]);
    expect(out.signature).toBe('a'.repeat(64));
  });

  it('refuses each way a request can be made for elsewhere or for something else', () => {
    expect(reason(() => checkAwsLoginRequest(signed({ 'X-Custos-Server-ID': 'custos-other' }), expected))).toBe(
      'server_id_mismatch',
    );
    expect(reason(() => checkAwsLoginRequest(signed({}, 'content-type;host;x-amz-date'), expected))).toBe(
      'server_id_not_signed',
    );
    expect(reason(() => checkAwsLoginRequest(signed({ Host: 'sts.attacker.example' }), expected))).toBe(
      'host_mismatch',
    );
    expect(reason(() => checkAwsLoginRequest(signed({}, 'content-type;x-amz-date;x-custos-server-id'), expected))).toBe(
      'host_mismatch',
    );
    expect(reason(() => checkAwsLoginRequest({ ...signed(), body: `${BODY}&RoleArn=x` }, expected))).toBe(
      'not_get_caller_identity',
    );
    expect(
      reason(() => checkAwsLoginRequest({ ...signed(), body: 'Action=AssumeRole&Version=2011-06-15' }, expected)),
    ).toBe('not_get_caller_identity');
    expect(reason(() => checkAwsLoginRequest(signed({ 'X-Amz-Date': '20261204T110000Z' }), expected))).toBe(
      'stale_signature',
    );
    expect(reason(() => checkAwsLoginRequest(signed({ Authorization: 'Bearer x' }), expected))).toBe(
      'malformed_signature',
    );
    // A signature scoped to another service (e.g. iam) is not an STS login.
    const iam = signed().headers.Authorization.replace('/sts/', '/iam/');
    expect(reason(() => checkAwsLoginRequest(signed({ Authorization: iam }), expected))).toBe('malformed_signature');
    // A signed header custos would not forward would break the signature at STS: refused here.
    expect(
      reason(() =>
        checkAwsLoginRequest(
          signed({ 'X-Extra': '1' }, 'content-type;host;x-amz-date;x-custos-server-id;x-extra'),
          expected,
        ),
      ),
    ).toBe('malformed_signature');
  });

  it('normalises assumed-role ARNs to their role, and leaves users as they are', () => {
    expect(normalizeCallerArn('arn:aws:sts::111122223333:assumed-role/app-runner/pod-7')).toEqual({
      principalArn: 'arn:aws:iam::111122223333:role/app-runner',
      sessionName: 'pod-7',
    });
    expect(normalizeCallerArn('arn:aws:iam::111122223333:user/ops')).toEqual({
      principalArn: 'arn:aws:iam::111122223333:user/ops',
      sessionName: null,
    });
  });
});
