import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type JwksServer, startJwksServer } from '../../core/src/identity/test-support/jwks-server.js';
import { makeSigningKey, type SigningKey, signToken } from '../../core/src/identity/test-support/signing-keys.js';
import { startTestServer, type TestServer } from './test-server.js';

/**
 * The recipes of docs/cloud-logins.md, run: an Azure managed identity and a
 * GCP workload logging in through the existing JWT federation. Two local
 * issuers mimic Entra ID (v2.0 issuer per tenant, `oid`, `tid`,
 * `xms_mirid`) and Google (`https://accounts.google.com`, `sub`, `email`,
 * `google.compute_engine`) with their keys on local JWKS endpoints — the
 * token shapes are the clouds', the issuers are test servers, not the clouds.
 */
const TENANT = randomUUID();
const ENTRA_ISSUER = `https://login.microsoftonline.com/${TENANT}/v2.0`;
const ENTRA_AUDIENCE = 'api://custos-prod';
const SUBSCRIPTION = randomUUID();
const MI_ID = `/subscriptions/${SUBSCRIPTION}/resourcegroups/agents/providers/Microsoft.ManagedIdentity/userAssignedIdentities/enricher`;
const GOOGLE_ISSUER = 'https://accounts.google.com';
const GOOGLE_AUDIENCE = 'https://custos.example.com';
const now = () => Math.floor(Date.now() / 1000);

/** An Entra ID access token for a (user-assigned) managed identity, as IMDS hands it out. */
function entraClaims(overrides: JWTPayload = {}): JWTPayload {
  const oid = randomUUID();
  return {
    iss: ENTRA_ISSUER,
    aud: ENTRA_AUDIENCE,
    sub: oid,
    oid,
    tid: TENANT,
    azp: randomUUID(),
    azpacr: '2',
    idtyp: 'app',
    ver: '2.0',
    xms_mirid: MI_ID,
    iat: now(),
    nbf: now(),
    exp: now() + 3600,
    ...overrides,
  };
}

/** A Google ID token from the metadata server (`identity?audience=…&format=full`). */
function googleClaims(overrides: JWTPayload = {}): JWTPayload {
  return {
    iss: GOOGLE_ISSUER,
    aud: GOOGLE_AUDIENCE,
    azp: '112233445566778899000',
    sub: '112233445566778899000',
    email: 'enricher@agents-prod.iam.gserviceaccount.com',
    email_verified: true,
    google: {
      compute_engine: {
        project_id: 'agents-prod',
        project_number: 123456789012,
        zone: 'europe-west1-b',
        instance_id: '4455667788990011223',
        instance_name: 'gpu-node-1',
      },
    },
    iat: now(),
    exp: now() + 3600,
    ...overrides,
  };
}

describe('cloud workload identities through JWT federation (recipes of docs/cloud-logins.md)', () => {
  let s: TestServer;
  let entraKey: SigningKey;
  let googleKey: SigningKey;
  let entraJwks: JwksServer;
  let googleJwks: JwksServer;

  const put = (url: string, payload: object) => s.call({ method: 'PUT', url, payload });
  const login = (role: string, jwt: string) =>
    s.call({ method: 'POST', url: '/v1/auth/jwt/login', token: null, payload: { role, jwt, ttl: '5m' } });

  beforeAll(async () => {
    [entraKey, googleKey] = await Promise.all([makeSigningKey('RS256'), makeSigningKey('RS256')]);
    entraJwks = await startJwksServer([entraKey.publicJwk]);
    googleJwks = await startJwksServer([googleKey.publicJwk]);
    s = await startTestServer('sqlite');
    expect(
      (await put('/v1/policies/none', { policy: 'forbid(principal, action, resource) when { false };' })).statusCode,
    ).toBe(200);
    // Recipe: Azure managed identity.
    expect(
      (
        await put('/v1/auth/jwt/methods/azure-prod', {
          issuer: ENTRA_ISSUER,
          audience: ENTRA_AUDIENCE,
          jwks_url: entraJwks.url,
          algorithms: ['RS256'],
          claim_labels: { xms_mirid: 'azure_identity' },
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (
        await put('/v1/roles/azure-enricher', {
          policies: ['none'],
          max_ttl: '15m',
          auth: ['jwt'],
          jwt_methods: ['azure-prod'],
          bound_claims: {
            tid: TENANT,
            xms_mirid: `/subscriptions/${SUBSCRIPTION}/resourcegroups/agents/providers/Microsoft.ManagedIdentity/userAssignedIdentities/*`,
          },
          grantable_labels: ['azure_identity'],
        })
      ).statusCode,
    ).toBe(200);
    // Recipe: GCP workload identity (a VM's or GKE workload's service account).
    expect(
      (
        await put('/v1/auth/jwt/methods/gcp-prod', {
          issuer: GOOGLE_ISSUER,
          audience: GOOGLE_AUDIENCE,
          jwks_url: googleJwks.url,
          algorithms: ['RS256'],
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (
        await put('/v1/roles/gcp-enricher', {
          policies: ['none'],
          max_ttl: '15m',
          auth: ['jwt'],
          jwt_methods: ['gcp-prod'],
          bound_claims: {
            email: 'enricher@agents-prod.iam.gserviceaccount.com',
            '/google/compute_engine/project_id': 'agents-prod',
          },
        })
      ).statusCode,
    ).toBe(200);
  });
  afterAll(async () => {
    await s?.close();
    await entraJwks?.close();
    await googleJwks?.close();
  });

  it('an Azure managed identity of the bound tenant and resource group logs in', async () => {
    const response = await login('azure-enricher', await signToken(entraKey, entraClaims()));
    expect(response.statusCode, response.body).toBe(200);
    const task = await s.call({ method: 'GET', url: `/v1/tasks/${response.json().task_id}` });
    expect(task.json().sub).toMatch(new RegExp(`^jwt:${ENTRA_ISSUER}#`));
  });

  it('refuses another tenant’s token, another resource group’s identity, and a token for another audience', async () => {
    const otherTenant = randomUUID();
    for (const claims of [
      entraClaims({ tid: otherTenant }),
      entraClaims({ iss: `https://login.microsoftonline.com/${otherTenant}/v2.0`, tid: otherTenant }),
      entraClaims({ xms_mirid: MI_ID.replace('/resourcegroups/agents/', '/resourcegroups/other/') }),
      entraClaims({ aud: 'https://management.azure.com' }),
    ]) {
      expect((await login('azure-enricher', await signToken(entraKey, claims))).statusCode).toBe(401);
    }
  });

  it('a GCP service account of the bound project logs in', async () => {
    const response = await login('gcp-enricher', await signToken(googleKey, googleClaims()));
    expect(response.statusCode, response.body).toBe(200);
  });

  it('refuses another project, another service account, and a key Google never published', async () => {
    const stranger = await makeSigningKey('RS256');
    const cases: Array<[SigningKey, JWTPayload]> = [
      [
        googleKey,
        googleClaims({
          google: {
            compute_engine: {
              project_id: 'attacker-proj',
              project_number: 1,
              zone: 'x',
              instance_id: '1',
              instance_name: 'x',
            },
          },
        }),
      ],
      [googleKey, googleClaims({ email: 'other@agents-prod.iam.gserviceaccount.com' })],
      [stranger, googleClaims()],
    ];
    for (const [key, claims] of cases) {
      expect((await login('gcp-enricher', await signToken(key, claims))).statusCode).toBe(401);
    }
  });
});
