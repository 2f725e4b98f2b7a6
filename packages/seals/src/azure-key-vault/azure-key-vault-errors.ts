import { CustosError, IntegrityError } from '@custos/core';

const SAFE = /^[A-Za-z0-9_.-]{1,80}$/;

/**
 * Turns what the Azure SDK (Key Vault client, identity credential) throws
 * into a custos error with a stable code.
 *
 * As for AWS, what goes into the error is chosen: the HTTP status and the
 * service's error code (`Forbidden`, `Throttled`, `KeyNotFound`), never the
 * SDK's message (which can name the identity's object id, the tenant, or —
 * for a credential error — describe each link of the chain and what it
 * found in the environment), and the SDK error is not kept as `cause`.
 */
export function azureKeyVaultError(error: unknown, operation: 'wrapKey' | 'unwrapKey'): CustosError {
  if (error instanceof CustosError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    statusCode?: unknown;
    code?: unknown;
  };
  const name = typeof e.name === 'string' ? e.name : '';
  // Every link of DefaultAzureCredential's chain said "not configured here".
  if (name === 'AggregateAuthenticationError' || name === 'CredentialUnavailableError') {
    return new CustosError(
      'CUSTOS_ERR_SEAL_KMS_NO_CREDENTIALS',
      'Set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate), a workload identity or a managed identity for the custos process.',
    );
  }
  // Entra ID refused the credentials the chain found (wrong secret, disabled app).
  if (name === 'AuthenticationError') {
    return new CustosError(
      'CUSTOS_ERR_SEAL_ACCESS_DENIED',
      `Azure Key Vault ${operation}: the identity platform refused the credentials.`,
    );
  }
  if (name === 'AbortError') {
    return new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', `Azure Key Vault ${operation}: no answer in time.`);
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const code = typeof e.code === 'string' && SAFE.test(e.code) ? e.code : undefined;
  const what = `Azure Key Vault ${operation}: ${[status, code].filter((x) => x !== undefined).join(' ') || name || 'failed'}.`;
  if (status === 401 || status === 403) return new CustosError('CUSTOS_ERR_SEAL_ACCESS_DENIED', what);
  if (status === 404) return new CustosError('CUSTOS_ERR_SEAL_KEY_NOT_FOUND', what);
  // Key Vault answers 400 BadParameter when the wrapped data key does not
  // decrypt under this key: another key, or an edited blob.
  if (status === 400 && operation === 'unwrapKey') return new IntegrityError();
  // 429 after the retries, 5xx, refused or reset connections: transient.
  return new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', what);
}
