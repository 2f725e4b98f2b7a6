import type { ConnectionOptions } from 'node:tls';
import { CustosError } from '@custos/core';
import type { EngineSslMode } from './engine-url.js';

/** The TLS options of a connection, in the shape both drivers accept (`pg`'s `ssl`, `mysql2`'s `ssl`). */
export interface EngineTlsOptions {
  /** The engine's CA certificates (PEM); absent: the system's. */
  readonly ca?: string;
  readonly rejectUnauthorized: true;
  /** mysql2: check the server's name too (pg always does, unless `checkServerIdentity` says otherwise). */
  readonly verifyIdentity: boolean;
  /** pg: `verify-ca` skips the name check. */
  readonly checkServerIdentity?: ConnectionOptions['checkServerIdentity'];
}

/**
 * The TLS a connection uses, from the URL's `sslmode` and the engine's own
 * CA (`tls_ca`, PEM). `false` is plain TCP: no `sslmode` and no CA, or
 * `sslmode=disable`. A CA without `sslmode` means `verify-full`; a CA with
 * `sslmode=disable` is a contradiction and refused. Every TLS mode verifies
 * the certificate chain (see {@link EngineSslMode}); the CA replaces the
 * system's CAs when given.
 */
export function engineTlsOptions(mode: EngineSslMode | undefined, ca: string | undefined): false | EngineTlsOptions {
  if (mode === 'disable') {
    if (ca) throw new CustosError('CUSTOS_ERR_VALIDATION', 'The engine has a TLS CA but its URL says sslmode=disable.');
    return false;
  }
  if (mode === undefined && !ca) return false;
  const verifyName = mode !== 'verify-ca';
  return {
    ...(ca ? { ca } : {}),
    rejectUnauthorized: true,
    verifyIdentity: verifyName,
    // verify-ca: the chain is checked, the name is not.
    ...(verifyName ? {} : { checkServerIdentity: () => undefined }),
  };
}
