import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** What the verifier needs of a request: as received, before any parsing. */
export interface SignedRequest {
  readonly method: string;
  /** The raw request target (`/`, `/path?query`). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Why a signature was refused, in the error names AWS answers with. */
export type SigV4Failure =
  | { readonly type: 'MissingAuthenticationTokenException'; readonly message: string }
  | { readonly type: 'IncompleteSignatureException'; readonly message: string }
  | { readonly type: 'UnrecognizedClientException'; readonly message: string }
  | { readonly type: 'InvalidSignatureException'; readonly message: string };

/** The verified caller. */
export interface SigV4Caller {
  readonly accessKeyId: string;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** AWS refuses a request whose X-Amz-Date is more than 5 minutes off. */
const MAX_SKEW_MS = 5 * 60 * 1000;

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding as SigV4 wants it (unreserved characters kept, the rest %XX upper-case). */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalUri(path: string): string {
  // Non-S3 services encode each segment twice: once by the client when it
  // built the URL, once more in the canonical request.
  const segments = path.split('/').map((seg) => uriEncode(uriEncode(decodeURIComponent(seg))));
  return segments.join('/') || '/';
}

function canonicalQuery(search: string): string {
  if (!search) return '';
  const pairs = new URLSearchParams(search);
  return [...pairs.entries()]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v.join(',') : v).trim().replace(/\s+/g, ' ');
}

/**
 * Verifies an AWS Signature Version 4 `Authorization` header, as AWS does:
 * rebuilds the canonical request from what was received (method, path,
 * query, the signed headers, the SHA-256 of the body), the string to sign
 * (algorithm, X-Amz-Date, credential scope, hash of the canonical request),
 * derives the signing key from the secret (HMAC chain over date, region,
 * service, `aws4_request`) and compares signatures in constant time. The
 * scope must name this region and service and the date must be within five
 * minutes, so a captured request cannot be replayed later or elsewhere.
 *
 * Written for the wire-compatible test server: it lets the tests prove the
 * SDK signs with the credentials its default chain found, not that custos
 * talks to AWS itself.
 */
export function verifySigV4(
  request: SignedRequest,
  secrets: ReadonlyMap<string, string>,
  scope: { readonly region: string; readonly service: string; readonly now?: Date },
): SigV4Caller | SigV4Failure {
  const auth = headerValue(request.headers, 'authorization');
  if (!auth) {
    return { type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' };
  }
  const m = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) {
    return {
      type: 'IncompleteSignatureException',
      message: 'Authorization header requires Credential, SignedHeaders and Signature.',
    };
  }
  const [, credential, signedHeadersText, signature] = m as unknown as [string, string, string, string];
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') {
    return { type: 'IncompleteSignatureException', message: 'Credential is malformed.' };
  }
  const [accessKeyId, date, region, service] = parts as [string, string, string, string];
  const secret = secrets.get(accessKeyId);
  if (secret === undefined) {
    return { type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  }
  if (region !== scope.region || service !== scope.service) {
    return { type: 'InvalidSignatureException', message: 'Credential should be scoped to a valid region and service.' };
  }
  const amzDate = headerValue(request.headers, 'x-amz-date');
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== date) {
    return {
      type: 'IncompleteSignatureException',
      message: 'X-Amz-Date is missing or does not match the credential date.',
    };
  }
  const signedAt = Date.UTC(
    Number(amzDate.slice(0, 4)),
    Number(amzDate.slice(4, 6)) - 1,
    Number(amzDate.slice(6, 8)),
    Number(amzDate.slice(9, 11)),
    Number(amzDate.slice(11, 13)),
    Number(amzDate.slice(13, 15)),
  );
  if (Math.abs((scope.now ?? new Date()).getTime() - signedAt) > MAX_SKEW_MS) {
    return { type: 'InvalidSignatureException', message: 'Signature expired.' };
  }
  const signedHeaders = signedHeadersText.split(';');
  // The host and the date must be signed, and so must every x-amz-* header
  // the request carries: otherwise they could be changed in flight.
  const mustSign = ['host', 'x-amz-date', ...Object.keys(request.headers).filter((h) => h.startsWith('x-amz-'))];
  if (mustSign.some((h) => !signedHeaders.includes(h))) {
    return { type: 'InvalidSignatureException', message: 'Required headers are not signed.' };
  }
  const url = new URL(request.url, 'http://placeholder');
  const canonicalHeaders = signedHeaders.map((h) => `${h}:${headerValue(request.headers, h) ?? ''}\n`).join('');
  const canonicalRequest = [
    request.method,
    canonicalUri(url.pathname),
    canonicalQuery(url.search),
    canonicalHeaders,
    signedHeadersText,
    sha256Hex(request.body),
  ].join('\n');
  const credentialScope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, credentialScope, sha256Hex(canonicalRequest)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
  const expected = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    return {
      type: 'InvalidSignatureException',
      message:
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    };
  }
  return { accessKeyId };
}
