import { createHash, createHmac } from 'node:crypto';

/** AWS credentials of the workload (from its SDK's default chain, an instance role, a task role…). */
export interface AwsLoginCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** What {@link signAwsLoginRequest} needs. */
export interface AwsLoginRequestOptions {
  readonly credentials: AwsLoginCredentials;
  /** The custos server's id (its AWS method's `server_id`): signed in, so no other server can replay the request. */
  readonly serverId: string;
  /** The STS endpoint custos forwards to (default `https://sts.amazonaws.com`): its host is signed. */
  readonly stsEndpoint?: string;
  /** The signing region (default `us-east-1`, the global endpoint's). */
  readonly region?: string;
  readonly now?: Date;
}

const BODY = 'Action=GetCallerIdentity&Version=2011-06-15';
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: Buffer | string, s: string) => createHmac('sha256', key).update(s, 'utf8').digest();

/**
 * Signs an `sts:GetCallerIdentity` request (AWS Signature V4) for
 * `POST /v1/auth/aws/login`. Only the signed headers and body go to custos —
 * never the credentials, and no URL: custos sends the request to the STS
 * endpoint it is configured with, and checks that the signed `Host` is that
 * endpoint's and the signed `X-Custos-Server-ID` is its own. The signature
 * is good once, for five minutes.
 *
 * @example
 * const request = signAwsLoginRequest({ credentials: await fromNodeProviderChain()(), serverId: 'custos-prod' });
 * const task = await client.loginWithAws({ role: 'deployer', request });
 */
export function signAwsLoginRequest(options: AwsLoginRequestOptions): {
  headers: Record<string, string>;
  body: string;
} {
  const region = options.region ?? 'us-east-1';
  const host = new URL(options.stsEndpoint ?? 'https://sts.amazonaws.com').host;
  const amzDate = (options.now ?? new Date())
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
    host,
    'x-amz-date': amzDate,
    'x-custos-server-id': options.serverId,
    ...(options.credentials.sessionToken ? { 'x-amz-security-token': options.credentials.sessionToken } : {}),
  };
  const names = Object.keys(headers).sort();
  const canonical = [
    'POST',
    '/',
    '',
    names.map((n) => `${n}:${headers[n]!.trim()}\n`).join(''),
    names.join(';'),
    sha256(BODY),
  ].join('\n');
  const scope = `${date}/${region}/sts/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${options.credentials.secretAccessKey}`, date), region), 'sts'), 'aws4_request');
  const signature = createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${options.credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return { headers, body: BODY };
}
