import { CustosError, IntegrityError } from '@custos/core';

/** Error names that mean "this key or these credentials may not do this" — retrying will not help. */
const DENIED = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'DisabledException',
  'KMSInvalidStateException',
  'InvalidKeyUsageException',
]);

/** The ciphertext does not open under this key and context: an edited blob, another key, another cluster. */
const INTEGRITY = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);

/**
 * Turns what the AWS SDK throws into a custos error with a stable code.
 *
 * What goes into the error is chosen, not passed through: the error *name*
 * AWS answered (`AccessDeniedException`, `ThrottlingException`) and its
 * request id, both safe and what an operator needs to find the call in
 * CloudTrail. The SDK error itself is not attached as `cause`: its message
 * can quote the caller's ARN and, for credential errors, the provider chain's
 * findings, and a logger that serialises causes would print them.
 */
export function awsKmsError(error: unknown, operation: string): CustosError {
  if (error instanceof CustosError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    $metadata?: { requestId?: unknown };
  };
  const name = typeof e.name === 'string' && /^[A-Za-z0-9.]{1,80}$/.test(e.name) ? e.name : 'Error';
  const requestId =
    typeof e.$metadata?.requestId === 'string' && /^[A-Za-z0-9-]{1,80}$/.test(e.$metadata.requestId)
      ? ` (request id ${e.$metadata.requestId})`
      : '';
  if (name === 'CredentialsProviderError') {
    return new CustosError(
      'CUSTOS_ERR_SEAL_KMS_NO_CREDENTIALS',
      'Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a web identity or an instance role for the custos process.',
    );
  }
  if (INTEGRITY.has(name)) return new IntegrityError();
  if (name === 'NotFoundException') {
    return new CustosError('CUSTOS_ERR_SEAL_KEY_NOT_FOUND', `AWS KMS ${operation}: ${name}${requestId}.`);
  }
  if (DENIED.has(name))
    return new CustosError('CUSTOS_ERR_SEAL_ACCESS_DENIED', `AWS KMS ${operation}: ${name}${requestId}.`);
  if (name === 'AbortError' || name === 'TimeoutError') {
    return new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', `AWS KMS ${operation}: no answer in time.`);
  }
  // Throttling after the SDK's retries, KMS internal errors, key store
  // unavailable, refused connections: transient, worth another unseal later.
  return new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', `AWS KMS ${operation}: ${name}${requestId}.`);
}
