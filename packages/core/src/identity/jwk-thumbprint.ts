import { calculateJwkThumbprint, type JWK } from 'jose';

/**
 * RFC 7638 JWK SHA-256 thumbprint (base64url), the `jkt` that binds a
 * DPoP-bound token to its key (`cnf.jkt`, RFC 9449 §6). Only the required
 * public members take part, so a JWK with extra members (`kid`, `alg`, `use`)
 * has the same thumbprint as the bare key.
 *
 * @example
 * ```ts
 * const jkt = await jwkThumbprint({ kty: 'EC', crv: 'P-256', x: '…', y: '…' });
 * ```
 */
export function jwkThumbprint(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, 'sha256');
}
