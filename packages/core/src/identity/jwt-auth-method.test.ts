import { createHmac, randomBytes } from 'node:crypto';
import { base64url, createLocalJWKSet, exportSPKI, importSPKI, type JWTPayload, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressPolicy } from '../egress/egress-policy.js';
import { UnauthenticatedError, ValidationError } from '../errors/index.js';
import { IdentityRejectedError } from './identity-rejected-error.js';
import type { JwtAuthConfig } from './jwt-auth-config.js';
import { JwtAuthMethod, MAX_JWT_LENGTH, MAX_JWT_SUBJECT_BYTES, verifyWorkloadJwt } from './jwt-auth-method.js';
import { type JwksServer, startJwksServer } from './test-support/jwks-server.js';
import {
  githubActionsClaims,
  kubernetesClaims,
  makeSigningKey,
  type SigningKey,
  signToken,
} from './test-support/signing-keys.js';

const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const GH_ISSUER = 'https://token.actions.githubusercontent.com';
const AUDIENCE = 'custos';
const nowSec = () => Math.floor(Date.now() / 1000);

let rsa: SigningKey;
let ec: SigningKey;
let ed: SigningKey;
let stranger: SigningKey;
let k8s: JwtAuthMethod;

/** Asserts the token is refused with the given audit reason and nothing leaks. */
async function expectRejected(p: Promise<unknown>, reason: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(IdentityRejectedError);
  expect(e).toBeInstanceOf(UnauthenticatedError);
  const err = e as IdentityRejectedError;
  expect(err.auditReason).toBe(reason);
  expect(err.code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
  expect(err.toJSON()).toEqual({ code: 'CUSTOS_ERR_UNAUTHENTICATED', message: expect.any(String) });
  // The client-visible message is the fixed catalogue sentence: no reason, no claim value.
  expect(err.message).toBe(new UnauthenticatedError().message);
  expect(err.cause).toBeUndefined();
}

function k8sConfig(overrides: Partial<JwtAuthConfig> = {}): JwtAuthConfig {
  return {
    name: 'k8s-prod',
    issuer: K8S_ISSUER,
    audience: AUDIENCE,
    jwks: { keys: [rsa.publicJwk, ec.publicJwk, ed.publicJwk] },
    ...overrides,
  };
}

beforeAll(async () => {
  [rsa, ec, ed, stranger] = await Promise.all([
    makeSigningKey('RS256'),
    makeSigningKey('ES256'),
    makeSigningKey('EdDSA'),
    makeSigningKey('RS256'),
  ]);
  k8s = new JwtAuthMethod(k8sConfig());
});

describe('JwtAuthMethod with a static key set (--jwks-file)', () => {
  it.each(['RS256', 'ES256', 'EdDSA'] as const)('accepts a Kubernetes-like token signed with %s', async (alg) => {
    const key = { RS256: rsa, ES256: ec, EdDSA: ed }[alg];
    const token = await signToken(key, kubernetesClaims(K8S_ISSUER, AUDIENCE));
    const who = await k8s.verify(token, {
      subject: 'system:serviceaccount:agents:enricher',
      claims: { '/kubernetes.io/namespace': 'agents', '/kubernetes.io/serviceaccount/name': 'enricher' },
    });
    expect(who.method).toBe('k8s-prod');
    expect(who.subject).toBe('system:serviceaccount:agents:enricher');
    expect(who.claims.iss).toBe(K8S_ISSUER);
    expect(who.expiresAtMs).toBe((who.claims.exp as number) * 1000);
  });

  it('refuses alg "none" (an unsigned token)', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify(kubernetesClaims(K8S_ISSUER, AUDIENCE)));
    await expectRejected(k8s.verify(`${header}.${payload}.`), 'algorithm_not_allowed');
  });

  it('refuses HS256 signed with the RSA public key as the HMAC secret (key confusion)', async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const header = base64url.encode(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: rsa.kid }));
    const payload = base64url.encode(JSON.stringify(kubernetesClaims(K8S_ISSUER, AUDIENCE)));
    const sig = createHmac('sha256', pem).update(`${header}.${payload}`).digest('base64url');
    const forged = `${header}.${payload}.${sig}`;
    await expectRejected(k8s.verify(forged), 'algorithm_not_allowed');

    // Even a misconfigured allow-list would not save the attacker: jose itself
    // refuses to use an asymmetric key, or a JWKS, for HMAC verification.
    const publicKey = await importSPKI(pem, 'RS256');
    await expect(jwtVerify(forged, publicKey, { algorithms: ['HS256'] })).rejects.toThrow();
    await expect(
      jwtVerify(forged, createLocalJWKSet({ keys: [rsa.publicJwk] }), { algorithms: ['HS256'] }),
    ).rejects.toThrow();
    // And custos refuses to be configured that way.
    expect(() => new JwtAuthMethod(k8sConfig({ algorithms: ['HS256' as never] }))).toThrow(ValidationError);
  });

  it('refuses an algorithm outside the configured allow-list', async () => {
    const esOnly = new JwtAuthMethod(k8sConfig({ algorithms: ['ES256'] }));
    await expectRejected(
      esOnly.verify(await signToken(rsa, kubernetesClaims(K8S_ISSUER, AUDIENCE))),
      'algorithm_not_allowed',
    );
  });

  it('refuses a kid that is not in the key set', async () => {
    const token = await signToken(rsa, kubernetesClaims(K8S_ISSUER, AUDIENCE), { kid: 'no-such-key' });
    await expectRejected(k8s.verify(token), 'unknown_key');
  });

  it('refuses a token from another key, under its own kid or a trusted one', async () => {
    const claims = kubernetesClaims(K8S_ISSUER, AUDIENCE);
    await expectRejected(k8s.verify(await signToken(stranger, claims)), 'unknown_key');
    await expectRejected(k8s.verify(await signToken(stranger, claims, { kid: rsa.kid })), 'bad_signature');
  });

  it('refuses a tampered payload', async () => {
    const token = await signToken(rsa, kubernetesClaims(K8S_ISSUER, AUDIENCE));
    const [h, , s] = token.split('.');
    const evil = base64url.encode(
      JSON.stringify(kubernetesClaims(K8S_ISSUER, AUDIENCE, { sub: 'system:serviceaccount:kube-system:admin' })),
    );
    await expectRejected(k8s.verify(`${h}.${evil}.${s}`), 'bad_signature');
  });

  it('refuses an expired token, beyond the clock tolerance only', async () => {
    const t = nowSec();
    await expectRejected(
      k8s.verify(await signToken(ec, kubernetesClaims(K8S_ISSUER, AUDIENCE, { iat: t - 700, exp: t - 60 }))),
      'expired',
    );
    // 10 s past exp is within the default 30 s tolerance.
    await expect(
      k8s.verify(await signToken(ec, kubernetesClaims(K8S_ISSUER, AUDIENCE, { iat: t - 700, exp: t - 10 }))),
    ).resolves.toBeDefined();
  });

  it('refuses a token that is not yet valid or issued in the future', async () => {
    const t = nowSec();
    await expectRejected(
      k8s.verify(await signToken(ec, kubernetesClaims(K8S_ISSUER, AUDIENCE, { nbf: t + 120 }))),
      'not_yet_valid',
    );
    await expectRejected(
      k8s.verify(await signToken(ec, kubernetesClaims(K8S_ISSUER, AUDIENCE, { iat: t + 120, nbf: t }))),
      'issued_in_future',
    );
  });

  it('refuses a token older than maxTokenAgeSec even if exp is far away', async () => {
    const strict = new JwtAuthMethod(k8sConfig({ maxTokenAgeSec: 300 }));
    const t = nowSec();
    const old = await signToken(
      ec,
      kubernetesClaims(K8S_ISSUER, AUDIENCE, { iat: t - 3600, nbf: t - 3600, exp: t + 3600 }),
    );
    await expectRejected(strict.verify(old), 'too_old');
    await expect(k8s.verify(old)).resolves.toBeDefined();
  });

  it('refuses the wrong audience and the wrong issuer', async () => {
    await expectRejected(
      k8s.verify(await signToken(ec, kubernetesClaims(K8S_ISSUER, 'some-other-service'))),
      'audience_mismatch',
    );
    await expectRejected(
      k8s.verify(await signToken(ec, kubernetesClaims('https://evil.example', AUDIENCE))),
      'issuer_mismatch',
    );
  });

  it('accepts any of several configured audiences', async () => {
    const multi = new JwtAuthMethod(k8sConfig({ audience: ['custos-a', 'custos-b'] }));
    await expect(multi.verify(await signToken(ec, kubernetesClaims(K8S_ISSUER, 'custos-b')))).resolves.toBeDefined();
    await expectRejected(
      multi.verify(await signToken(ec, kubernetesClaims(K8S_ISSUER, AUDIENCE))),
      'audience_mismatch',
    );
  });

  it('requires exp, iat and sub', async () => {
    for (const claim of ['exp', 'iat', 'sub'] as const) {
      const claims: JWTPayload = kubernetesClaims(K8S_ISSUER, AUDIENCE);
      delete claims[claim];
      await expectRejected(k8s.verify(await signToken(ec, claims)), 'missing_claim');
    }
  });

  it('refuses a subject longer than a task identity may be, whatever the role binding', async () => {
    // The subject becomes the task's identity (`jwt:<iss>#<sub>`), carried in
    // every token of its tree: a 12 KiB one made tokens past the 8 KiB the
    // token exchange takes. Counted in UTF-8 bytes.
    const at = (sub: string) => signToken(ec, { ...kubernetesClaims(K8S_ISSUER, AUDIENCE), sub });
    const longest = `system:serviceaccount:agents:${'a'.repeat(MAX_JWT_SUBJECT_BYTES - 29)}`;
    expect(Buffer.byteLength(longest)).toBe(MAX_JWT_SUBJECT_BYTES);
    await expect(k8s.verify(await at(longest))).resolves.toMatchObject({ subject: longest });
    for (const sub of [`${longest}a`, 'x'.repeat(11 * 1024), `system:serviceaccount:agents:${'é'.repeat(250)}`]) {
      await expectRejected(k8s.verify(await at(sub), { subject: 'system:serviceaccount:*' }), 'subject_too_long');
    }
    // Room for every real platform's subject: the longest Kubernetes service
    // account (a 63-character namespace, a 253-character name) fits.
    expect(`system:serviceaccount:${'n'.repeat(63)}:${'s'.repeat(253)}`.length).toBeLessThan(MAX_JWT_SUBJECT_BYTES);
  });

  it('refuses a token that does not satisfy the role binding', async () => {
    const token = await signToken(ec, kubernetesClaims(K8S_ISSUER, AUDIENCE));
    await expectRejected(k8s.verify(token, { subject: 'system:serviceaccount:agents:other' }), 'subject_mismatch');
    await expectRejected(
      k8s.verify(token, { claims: { '/kubernetes.io/namespace': 'kube-system' } }),
      'bound_claim_mismatch',
    );
  });

  it('refuses garbage and oversized input before parsing', async () => {
    await expectRejected(k8s.verify('not-a-jwt'), 'malformed');
    await expectRejected(k8s.verify('a.b.c'), 'malformed');
    await expectRejected(k8s.verify(42 as unknown as string), 'malformed');
    await expectRejected(k8s.verify('x'.repeat(MAX_JWT_LENGTH + 1)), 'too_large');
  });

  it('tries each candidate key when the token has no kid and several keys fit', async () => {
    const [a, b] = await Promise.all([makeSigningKey('ES256'), makeSigningKey('ES256')]);
    const { kid: _a, ...jwkA } = a.publicJwk;
    const { kid: _b, ...jwkB } = b.publicJwk;
    const method = new JwtAuthMethod(k8sConfig({ jwks: { keys: [jwkA, jwkB] } }));
    const token = await signToken(b, kubernetesClaims(K8S_ISSUER, AUDIENCE), { kid: undefined });
    await expect(method.verify(token)).resolves.toMatchObject({ subject: 'system:serviceaccount:agents:enricher' });
    const foreign = await signToken(stranger, kubernetesClaims(K8S_ISSUER, AUDIENCE), { alg: 'RS256', kid: undefined });
    await expectRejected(method.verify(foreign), 'unknown_key');
    const c = await makeSigningKey('ES256');
    await expectRejected(
      method.verify(await signToken(c, kubernetesClaims(K8S_ISSUER, AUDIENCE), { kid: undefined })),
      'bad_signature',
    );
  });
});

describe('JwtAuthMethod configuration', () => {
  it.each([
    ['a private key in the key set', () => ({ jwks: { keys: [{ ...rsa.publicJwk, d: 'AAAA' }] } })],
    ['a symmetric key in the key set', () => ({ jwks: { keys: [{ kty: 'oct', k: 'AAAA' }] } })],
    ['an empty key set', () => ({ jwks: { keys: [] } })],
    ['plain http to a remote host', () => ({ jwks: { url: 'http://issuer.example/jwks.json' } })],
    ['credentials in the JWKS URL', () => ({ jwks: { url: 'https://u:p@issuer.example/jwks.json' } })],
    ['an empty audience list', () => ({ audience: [] })],
    ['alg none', () => ({ algorithms: ['none' as never] })],
    ['an absurd clock tolerance', () => ({ clockToleranceSec: 86_400 })],
    ['a bad name', () => ({ name: 'Bad Name' })],
  ] as const)('refuses %s', (_label, overrides) => {
    expect(() => new JwtAuthMethod(k8sConfig(overrides() as Partial<JwtAuthConfig>))).toThrow(ValidationError);
  });

  it('plain http is allowed to loopback in any spelling, as for webhook rotators (one rule), and nowhere else', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', '[::1]', '[::ffff:127.0.0.1]', 'localhost', 'LOCALHOST.']) {
      expect(
        () => new JwtAuthMethod(k8sConfig({ jwks: { url: `http://${host}:8200/jwks.json` } })),
        host,
      ).not.toThrow();
    }
    for (const host of ['10.0.0.1', 'localhost.example', '[fe80::1]']) {
      expect(() => new JwtAuthMethod(k8sConfig({ jwks: { url: `http://${host}/jwks.json` } })), host).toThrow(
        ValidationError,
      );
    }
  });
});

describe('JwtAuthMethod with a remote JWKS over real HTTP', () => {
  let server: JwksServer;
  let config: JwtAuthConfig;

  beforeAll(async () => {
    server = await startJwksServer([rsa.publicJwk, ec.publicJwk]);
    config = { name: 'github', issuer: GH_ISSUER, audience: AUDIENCE, jwks: { url: server.url, cooldownMs: 0 } };
  });
  // The JWKS server of these tests listens on loopback: allowed explicitly, as an operator would.
  const egress = new EgressPolicy({ allow: ['127.0.0.1'] });
  afterAll(() => server.close());

  it('accepts a GitHub-Actions-like token bound to repository and branch', async () => {
    const method = new JwtAuthMethod(config, { egress });
    const token = await signToken(rsa, githubActionsClaims(GH_ISSUER, AUDIENCE));
    const who = await method.verify(token, {
      claims: { repository: 'acme/payments', ref: 'refs/heads/main', environment: ['staging', 'production'] },
    });
    expect(who.subject).toBe('repo:acme/payments:ref:refs/heads/main');
    expect(who.claims.repository).toBe('acme/payments');
    await expectRejected(method.verify(token, { claims: { repository: 'acme/other' } }), 'bound_claim_mismatch');
    await expect(
      method.verify(token, { subject: 'repo:acme/payments:ref:refs/heads/*', matching: 'glob' }),
    ).resolves.toBeDefined();
    await expectRejected(method.verify(token, { subject: 'repo:acme/payments:ref:refs/heads/*' }), 'subject_mismatch');
  });

  it('fetches the key set once and refetches when the issuer rotates keys', async () => {
    const method = new JwtAuthMethod(config, { egress });
    const before = server.hits;
    await method.verify(await signToken(rsa, githubActionsClaims(GH_ISSUER, AUDIENCE)));
    await method.verify(await signToken(ec, githubActionsClaims(GH_ISSUER, AUDIENCE)));
    expect(server.hits - before).toBe(1);

    const rotated = await makeSigningKey('EdDSA');
    server.setKeys([rotated.publicJwk, ec.publicJwk]);
    try {
      await expect(
        method.verify(await signToken(rotated, githubActionsClaims(GH_ISSUER, AUDIENCE))),
      ).resolves.toBeDefined();
      expect(server.hits - before).toBe(2);
      // The retired key is gone after the refetch.
      await expectRejected(
        method.verify(await signToken(rsa, githubActionsClaims(GH_ISSUER, AUDIENCE))),
        'unknown_key',
      );
    } finally {
      server.setKeys([rsa.publicJwk, ec.publicJwk]);
    }
  });

  it('fetches through the egress policy: a loopback JWKS is not fetched unless allowed', async () => {
    const before = server.hits;
    const method = new JwtAuthMethod(config); // the default policy: public destinations only
    await expectRejected(
      method.verify(await signToken(rsa, githubActionsClaims(GH_ISSUER, AUDIENCE))),
      'jwks_unavailable',
    );
    expect(server.hits).toBe(before);
  });

  it('refuses, with reason jwks_unavailable, when the issuer is down', async () => {
    server.setFailing(true);
    try {
      const method = new JwtAuthMethod(config, { egress });
      await expectRejected(
        method.verify(await signToken(rsa, githubActionsClaims(GH_ISSUER, AUDIENCE))),
        'jwks_unavailable',
      );
    } finally {
      server.setFailing(false);
    }
  });

  it('verifyWorkloadJwt reuses one method (and its fetched key set) per configuration', async () => {
    const cfg: JwtAuthConfig = { ...config, name: `github-${randomBytes(3).toString('hex')}` };
    const before = server.hits;
    const token = await signToken(ec, githubActionsClaims(GH_ISSUER, AUDIENCE));
    const a = await verifyWorkloadJwt(cfg, token, { claims: { repository: 'acme/payments' } }, { egress });
    const b = await verifyWorkloadJwt({ ...cfg }, token, {}, { egress });
    expect(a.subject).toBe(b.subject);
    expect(server.hits - before).toBe(1);
  });
});
