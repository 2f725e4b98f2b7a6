import { IdentityRejectedError } from '../identity/index.js';

/** The signed `sts:GetCallerIdentity` request a workload presents (`custos login aws`). */
export interface AwsSignedLoginRequest {
  /** The request's headers as signed (names case-insensitive). */
  headers: Record<string, string>;
  /** The form body, exactly as signed. */
  body: string;
}

/** The header a login request must carry, signed, naming the custos server it is meant for. */
export const AWS_SERVER_ID_HEADER = 'x-custos-server-id';
/** The only headers custos passes on to STS; anything else the caller sent stays here. */
const FORWARDED = new Set([
  'authorization',
  'content-type',
  'x-amz-date',
  'x-amz-security-token',
  'x-amz-content-sha256',
  AWS_SERVER_ID_HEADER,
  'host',
]);
const MAX_SKEW_MS = 5 * 60_000;

export type AwsLoginRejectReason =
  | 'not_get_caller_identity'
  | 'server_id_mismatch'
  | 'server_id_not_signed'
  | 'host_mismatch'
  | 'malformed_signature'
  | 'stale_signature'
  | 'replayed'
  | 'sts_refused'
  | 'sts_unreachable'
  | 'not_bound';

const reject = (reason: AwsLoginRejectReason) => new IdentityRejectedError<AwsLoginRejectReason>('aws', reason);

/**
 * Checks a presented login request before anything leaves custos, and
 * returns the headers to forward. What makes it safe to forward:
 *
 * - It can only be `sts:GetCallerIdentity`: the body must be exactly
 *   `Action=GetCallerIdentity&Version=2011-06-15`. custos never becomes a
 *   signing oracle for any other STS action.
 * - There is no URL in the request at all: custos sends it to the STS
 *   endpoint it is configured with, and the signed `Host` must be that
 *   endpoint's, so a request signed for (or pointing at) another host is
 *   refused here instead of sent anywhere.
 * - The `X-Custos-Server-ID` header must be signed and equal this server's
 *   id: a request captured by (or made for) another custos server — which
 *   could replay it here while its signature is fresh — is refused.
 * - The signature's `X-Amz-Date` must be within five minutes, and each
 *   signature is accepted once (the caller remembers it, see the service).
 */
export function checkAwsLoginRequest(
  request: AwsSignedLoginRequest,
  expected: { serverId: string; host: string; now: number },
): { headers: Record<string, string>; signature: string; signedAt: number } {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (typeof value !== 'string') throw reject('malformed_signature');
    headers[name.toLowerCase()] = value;
  }
  const form = new URLSearchParams(request.body);
  const keys = [...form.keys()].sort();
  if (
    keys.length !== 2 ||
    keys[0] !== 'Action' ||
    keys[1] !== 'Version' ||
    form.get('Action') !== 'GetCallerIdentity' ||
    form.get('Version') !== '2011-06-15'
  ) {
    throw reject('not_get_caller_identity');
  }
  const auth = headers.authorization ?? '';
  const m =
    /^AWS4-HMAC-SHA256 Credential=[^,\s]+\/\d{8}\/[a-z0-9-]+\/sts\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) throw reject('malformed_signature');
  const signed = (m[1] ?? '').split(';');
  if (!signed.includes(AWS_SERVER_ID_HEADER)) throw reject('server_id_not_signed');
  if (headers[AWS_SERVER_ID_HEADER] !== expected.serverId) throw reject('server_id_mismatch');
  if (!signed.includes('host') || headers.host?.toLowerCase() !== expected.host.toLowerCase()) {
    throw reject('host_mismatch');
  }
  // Every signed header must be one custos forwards, or STS could not check the signature.
  if (signed.some((h) => !FORWARDED.has(h))) throw reject('malformed_signature');
  const date = headers['x-amz-date'] ?? '';
  if (!/^\d{8}T\d{6}Z$/.test(date)) throw reject('malformed_signature');
  const signedAt = Date.UTC(
    Number(date.slice(0, 4)),
    Number(date.slice(4, 6)) - 1,
    Number(date.slice(6, 8)),
    Number(date.slice(9, 11)),
    Number(date.slice(11, 13)),
    Number(date.slice(13, 15)),
  );
  if (Math.abs(expected.now - signedAt) > MAX_SKEW_MS) throw reject('stale_signature');
  const forward: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    // Host follows the configured endpoint's URL (checked equal above).
    if (FORWARDED.has(name) && name !== 'host') forward[name] = value;
  }
  return { headers: forward, signature: m[2] ?? '', signedAt };
}

/**
 * The IAM identity of a caller ARN, as bindings name it: an assumed-role
 * session `arn:aws:sts::<acct>:assumed-role/<role>/<session>` becomes the
 * role `arn:aws:iam::<acct>:role/<role>` (the session name is returned
 * apart); users and roles are kept as they are. STS's answer has no role
 * path, so bindings name roles without it.
 */
export function normalizeCallerArn(arn: string): { principalArn: string; sessionName: string | null } {
  const m = /^arn:(aws|aws-cn|aws-us-gov):sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(arn);
  if (m) return { principalArn: `arn:${m[1]}:iam::${m[2]}:role/${m[3]}`, sessionName: m[4] ?? null };
  return { principalArn: arn, sessionName: null };
}
