import { randomBytes } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

/** A freshly generated issuer key: private for signing, public JWK for the JWKS. */
export interface SigningKey {
  alg: 'RS256' | 'ES256' | 'EdDSA';
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeSigningKey(alg: SigningKey['alg']): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `test-${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, publicJwk };
}

/** Signs `claims` with `key`; header overrides let tests forge odd headers. */
export function signToken(key: SigningKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .sign(key.privateKey);
}

const now = () => Math.floor(Date.now() / 1000);

/** Claims shaped like a projected Kubernetes service-account token. */
export function kubernetesClaims(issuer: string, audience: string, overrides: JWTPayload = {}): JWTPayload {
  const t = now();
  return {
    aud: [audience],
    exp: t + 600,
    iat: t,
    nbf: t,
    iss: issuer,
    sub: 'system:serviceaccount:agents:enricher',
    'kubernetes.io': {
      namespace: 'agents',
      pod: { name: 'enricher-7d9f', uid: '1f6c2b7e-0000-4000-8000-000000000001' },
      serviceaccount: { name: 'enricher', uid: '1f6c2b7e-0000-4000-8000-000000000002' },
    },
    ...overrides,
  };
}

/** Claims shaped like a GitHub Actions OIDC token. */
export function githubActionsClaims(issuer: string, audience: string, overrides: JWTPayload = {}): JWTPayload {
  const t = now();
  return {
    jti: randomBytes(16).toString('hex'),
    sub: 'repo:acme/payments:ref:refs/heads/main',
    aud: audience,
    ref: 'refs/heads/main',
    repository: 'acme/payments',
    repository_owner: 'acme',
    workflow: 'deploy',
    event_name: 'push',
    environment: 'production',
    job_workflow_ref: 'acme/payments/.github/workflows/deploy.yml@refs/heads/main',
    run_id: '6000000001',
    iss: issuer,
    nbf: t - 5,
    exp: t + 300,
    iat: t - 5,
    ...overrides,
  };
}
