import { CustosError, isCustosError } from '@custos/core';

/** AWS error names that mean "custos's principal may not do this". */
const DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation']);
/** Throttling that outlived the SDK's retries, and server-side faults. */
const UNAVAILABLE = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ServiceUnavailable',
  'ServiceFailure',
  'InternalFailure',
  'TimeoutError',
  'RequestTimeout',
]);
/** The request was understood and refused as invalid: the operator must change the configuration. */
const REFUSED = new Set([
  'ValidationError',
  'MalformedPolicyDocument',
  'MalformedPolicyDocumentException',
  'PackedPolicyTooLarge',
  'PackedPolicyTooLargeException',
  'RegionDisabledException',
  'NoSuchEntity',
  'NoSuchEntityException',
  'LimitExceeded',
  'LimitExceededException',
  'InvalidInput',
]);

/**
 * The custos error for a failed AWS call. Only the AWS error *name* and
 * custos's own words leave here — never the SDK's message, its request or
 * response (which can hold the session credentials of an AssumeRole answer),
 * and never as a `cause`. `what` names the operation and the IAM role (ARNs
 * are configuration, not secrets).
 */
export function awsCallError(error: unknown, what: string): CustosError {
  // The egress policy's own verdicts: a refused destination stays a refusal
  // (its message says which allow entry would help); a call that did not
  // complete (timeout, unreachable, redirect) is AWS being unavailable.
  if (isCustosError(error)) {
    return error.code === 'CUSTOS_ERR_EGRESS_FAILED'
      ? new CustosError('CUSTOS_ERR_AWS_UNAVAILABLE', `${what}: ${error.detail ?? 'no answer'}`)
      : error;
  }
  const name = error instanceof Error ? error.name : '';
  if (name === 'CredentialsProviderError') return new CustosError('CUSTOS_ERR_AWS_NO_CREDENTIALS', what);
  if (DENIED.has(name)) return new CustosError('CUSTOS_ERR_AWS_ACCESS_DENIED', `${what}: AWS answered ${name}.`);
  if (REFUSED.has(name)) return new CustosError('CUSTOS_ERR_AWS_REQUEST_REFUSED', `${what}: AWS answered ${name}.`);
  if (UNAVAILABLE.has(name) || name === 'AbortError') {
    return new CustosError('CUSTOS_ERR_AWS_UNAVAILABLE', `${what}: ${name || 'no answer'}.`);
  }
  // Unknown: an AWS-shaped name (letters only) is safe to show; anything else is not echoed.
  return new CustosError(
    'CUSTOS_ERR_AWS_UNAVAILABLE',
    `${what}: ${/^[A-Za-z]{1,64}$/.test(name) ? `AWS answered ${name}` : 'the call failed'}.`,
  );
}
