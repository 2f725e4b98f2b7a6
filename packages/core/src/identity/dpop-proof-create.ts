import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { jwkThumbprint } from './jwk-thumbprint.js';

/** What a client needs to make DPoP proofs for a request. */
export interface CreateDpopProofOptions {
  /** The proof key's private half; it never leaves the client. */
  privateKey: CryptoKey | KeyObject;
  /** Its public half as a JWK (embedded in every proof). */
  publicJwk: JWK;
  method: string;
  /** The request URL; query and fragment are dropped for `htu`. */
  url: string;
  /** Binds the proof to this access token (`ath`); pass it on every request that carries the token. */
  accessToken?: string;
  /** A nonce the server asked for (`DPoP-Nonce`). */
  nonce?: string;
  /** Signature algorithm; default from the key (ES256, ES384, EdDSA, PS256). */
  alg?: string;
  /** Clock, for tests (ms since epoch). */
  now?: number;
}

/** A fresh DPoP key pair with its thumbprint. */
export interface DpopKeyPair {
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** RFC 7638 thumbprint: what the server puts in the token's `cnf.jkt`. */
  jkt: string;
}

/**
 * Generates a DPoP key pair (default ES256). The private key is not
 * extractable: it can sign proofs but cannot be exported, printed or sent.
 *
 * @example
 * ```ts
 * const keys = await generateDpopKeyPair();
 * ```
 */
export async function generateDpopKeyPair(alg: 'ES256' | 'EdDSA' = 'ES256'): Promise<DpopKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: false });
  const publicJwk = publicMembers(await exportJWK(publicKey));
  return { privateKey, publicJwk, jkt: await jwkThumbprint(publicJwk) };
}

/**
 * Creates a DPoP proof JWT (RFC 9449 §4.2) for one request, for the SDK, the
 * CLI and tests. A new random `jti` every call: a proof is single-use.
 *
 * @example
 * ```ts
 * const proof = await createDpopProof({ ...keys, method: 'GET', url: 'https://custos.example/v1/secrets/kv/app', accessToken });
 * await fetch(url, { headers: { authorization: `DPoP ${accessToken}`, dpop: proof } });
 * ```
 */
export function createDpopProof(options: CreateDpopProofOptions): Promise<string> {
  // Only the public members are embedded, whatever the caller passed: a
  // private JWK handed in by mistake must not be broadcast with every request.
  const jwk = publicMembers(options.publicJwk);
  const alg = options.alg ?? defaultAlg(jwk);
  const url = new URL(options.url);
  url.search = '';
  url.hash = '';
  const claims: Record<string, string> = {
    jti: randomBytes(16).toString('base64url'),
    htm: options.method,
    htu: url.href,
  };
  if (options.accessToken !== undefined) {
    claims.ath = createHash('sha256').update(options.accessToken).digest('base64url');
  }
  if (options.nonce !== undefined) claims.nonce = options.nonce;
  return new SignJWT(claims)
    .setProtectedHeader({ typ: 'dpop+jwt', alg, jwk })
    .setIssuedAt(Math.floor((options.now ?? Date.now()) / 1000))
    .sign(options.privateKey);
}

function publicMembers(jwk: JWK): JWK {
  const keep =
    jwk.kty === 'RSA' ? ['kty', 'n', 'e'] : jwk.kty === 'EC' ? ['kty', 'crv', 'x', 'y'] : ['kty', 'crv', 'x'];
  return Object.fromEntries(keep.filter((m) => m in jwk).map((m) => [m, jwk[m as keyof JWK]])) as JWK;
}

function defaultAlg(jwk: JWK): string {
  if (jwk.kty === 'EC') return jwk.crv === 'P-384' ? 'ES384' : 'ES256';
  if (jwk.kty === 'OKP') return 'EdDSA';
  if (jwk.kty === 'RSA') return 'PS256';
  throw new TypeError('Unsupported DPoP key type');
}
