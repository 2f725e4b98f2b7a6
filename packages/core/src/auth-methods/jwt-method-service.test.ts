import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { taskKeysFixture } from '../task-tokens/test-support/task-keys-fixture.js';
import { RoleService } from '../tasks/index.js';
import { JwtMethodService } from './jwt-method-service.js';

const ISSUER = 'https://oidc.jwt-method-service.example.test';

async function setup() {
  const { store, barrier } = await taskKeysFixture();
  // Role writes are transactions (read and write together); this in-memory store has one writer.
  const storage = {
    entries: store,
    transaction: <T>(fn: (tx: { entries: typeof store }) => Promise<T>) => fn({ entries: store }),
  };
  const roles = new RoleService({ storage, cipher: barrier });
  const methods = new JwtMethodService({ storage, cipher: barrier });
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  await methods.write({
    name: 'ci',
    issuer: ISSUER,
    audience: 'custos',
    jwks: { keys: [jwk] },
    claimLabels: { team: 'team' },
  });
  const jwt = (claims: Record<string, unknown>, sub = 'repo:acme/app:ref:refs/heads/main') =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience('custos')
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
  return { roles, methods, jwt };
}

const jwtRole = { policies: [], auth: ['jwt' as const], bound_claims: { sub: ['repo:acme/*'] } };

describe('JWT logins: which methods and which claim labels a role lets in', () => {
  it('a role open to JWT logins must name its methods when written', async () => {
    const { roles } = await setup();
    await expect(roles.write('ci-agent', jwtRole)).rejects.toMatchObject({
      code: 'CUSTOS_ERR_VALIDATION',
      message: expect.stringMatching(/names its JWT methods/),
    });
    await expect(roles.write('ci-agent', { ...jwtRole, jwt_methods: ['ci'] })).resolves.toMatchObject({
      jwt_methods: ['ci'],
    });
  });

  it('a role stored without JWT methods (an earlier build) lets no JWT in, whatever method exists', async () => {
    const { roles, methods, jwt } = await setup();
    const role = await roles.write('ci-agent', { ...jwtRole, jwt_methods: ['ci'], grantable_labels: ['team'] });
    await expect(methods.login(role, await jwt({ team: 'a' }), undefined)).resolves.toMatchObject({
      labels: { team: 'a' },
    });
    const legacy = { ...role, jwt_methods: [] };
    for (const name of [undefined, 'ci']) {
      await expect(methods.login(legacy, await jwt({ team: 'a' }), name)).rejects.toMatchObject({
        code: 'CUSTOS_ERR_UNAUTHENTICATED',
        auditReason: 'role_names_no_jwt_method',
      });
    }
  });

  it('a claim mapped to a label key the role does not let be granted refuses the login (never drops the label)', async () => {
    const { roles, methods, jwt } = await setup();
    const role = await roles.write('ci-agent', { ...jwtRole, jwt_methods: ['ci'] });
    await expect(methods.login(role, await jwt({ team: 'search' }), undefined)).rejects.toMatchObject({
      code: 'CUSTOS_ERR_UNAUTHENTICATED',
      auditReason: 'claim_label_not_grantable',
    });
    // A token without the claim gives no label, so nothing is granted.
    await expect(methods.login(role, await jwt({}), undefined)).resolves.toMatchObject({ labels: {} });
    // The role's own label with the same key and value is no grant.
    const fixed = await roles.write('ci-agent', { ...jwtRole, jwt_methods: ['ci'], labels: { team: 'search' } });
    await expect(methods.login(fixed, await jwt({ team: 'search' }), undefined)).resolves.toMatchObject({
      labels: { team: 'search' },
    });
    await expect(methods.login(fixed, await jwt({ team: 'ads' }), undefined)).rejects.toMatchObject({
      auditReason: 'claim_label_not_grantable',
    });
  });
});
