/**
 * Adversarial suite — token forgery and confusion.
 *
 * The attacker holds some token (a task's, an operator's, one they forged or
 * captured) and tries to make custos accept it where it must not: as another
 * kind of principal, without the key it is bound to, with claims custos did
 * not sign, after it was revoked, or through an RFC 8693 parameter custos
 * would silently ignore. Each test is named after the promise it keeps.
 */
import { createHash, createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { createDpopProof, type DpopKeyPair, generateDpopKeyPair, issueTaskToken } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPostgres } from '../../../../test-support/postgres.js';
import { type Backend, fakeSecret, startTestServer, type TestServer } from '../test-server.js';

const backends: Backend[] = ['sqlite', ...(hasPostgres() ? (['postgres'] as const) : [])];
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const SECRET = '/v1/secrets/data/kv/forgery/x';

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;

describe.each(backends)('token forgery and confusion on %s', (backend) => {
  let s: TestServer;
  let dpopKeys: DpopKeyPair;

  const read = (headers: Record<string, string>, url = SECRET) => s.call({ method: 'GET', url, token: null, headers });
  const proofFor = (token: string, options: { method?: string; url?: string; keys?: DpopKeyPair } = {}) =>
    createDpopProof({
      ...(options.keys ?? dpopKeys),
      method: options.method ?? 'GET',
      url: options.url ?? `${s.node.services().issuer}${SECRET}`,
      accessToken: token,
    });
  const start = async (role: string, body: Record<string, unknown> = {}) => {
    const response = await s.call({ method: 'POST', url: `/v1/roles/${role}/tasks`, payload: { ttl: '5m', ...body } });
    expect(response.statusCode).toBe(200);
    return response.json() as { token: string; task_id: string; accessor: string };
  };
  /** A token exchange as a conforming client sends it; `null` leaves a parameter out. */
  const exchange = (params: Record<string, string | string[] | null>, headers: Record<string, string> = {}) => {
    const form = new URLSearchParams();
    for (const [name, value] of Object.entries({ grant_type: EXCHANGE, subject_token_type: JWT_TYPE, ...params })) {
      if (value === null) continue;
      for (const v of Array.isArray(value) ? value : [value]) form.append(name, v);
    }
    return s.call({
      method: 'POST',
      url: '/v1/oauth/token',
      token: null,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      payload: form.toString(),
    });
  };
  /** Signs `claims` as custos would, with custos's own current key: only the claim under test is wrong. */
  const signedByCustos = async (
    token: string,
    options: { audience?: string; issuer?: string; now?: number; exp?: number } = {},
  ) => {
    const c = claimsOf(token);
    const services = s.node.services();
    const now = options.now ?? Date.now();
    const { token: forged } = await issueTaskToken(
      {
        sub: c.sub as string,
        task_id: c.task_id as string,
        parent_task_id: c.parent_task_id as string | null,
        depth: c.depth as number,
        role: c.role as string,
        scope: c.scope as string,
        exp: options.exp ?? Math.floor(now / 1000) + 120,
      },
      {
        keys: services.taskKeys,
        issuer: options.issuer ?? services.issuer,
        audience: options.audience ?? 'custos',
        now,
      },
    );
    return forged;
  };
  /** A compact JWS with this header and `token`'s claims, signed by `signer`. */
  const resigned = (token: string, header: Record<string, unknown>, signer: (input: string) => Buffer | string) => {
    const input = `${b64url(header)}.${token.split('.')[1]}`;
    const signature = signer(input);
    return `${input}.${typeof signature === 'string' ? signature : signature.toString('base64url')}`;
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
    dpopKeys = await generateDpopKeyPair('ES256');
    const policy = await s.call({
      method: 'PUT',
      url: '/v1/policies/forgery',
      payload: {
        policy:
          'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/forgery/");\n' +
          'permit(principal, action == Custos::Action::"delegate", resource in Custos::Path::"sys/tasks/");',
      },
    });
    expect(policy.statusCode).toBe(200);
    for (const [name, body] of [
      ['forger', { policies: ['forgery'], max_ttl: '15m', max_depth: 3 }],
      ['bound', { policies: ['forgery'], max_ttl: '15m', max_depth: 3, require_dpop: true }],
    ] as const) {
      expect((await s.call({ method: 'PUT', url: `/v1/roles/${name}`, payload: body })).statusCode).toBe(200);
    }
    await s.call({ method: 'PUT', url: SECRET, payload: { data: { k: fakeSecret('forgery') } } });
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('one kind of principal cannot pass for another', () => {
    it('a task token is refused where an operator token is required', async () => {
      const task = await start('forger');
      const self = await s.call({ method: 'GET', url: '/v1/auth/token/self', token: task.token });
      expect(self.statusCode).toBe(403);
      const policy = await s.call({
        method: 'PUT',
        url: '/v1/policies/forgery',
        token: task.token,
        payload: { policy: 'permit(principal, action, resource);' },
      });
      expect(policy.statusCode).toBe(403);
    });

    it('an operator token is refused where a task token is required (token exchange, delegation)', async () => {
      const asSubject = await exchange({ subject_token: s.rootToken, subject_token_type: JWT_TYPE });
      expect(asSubject.statusCode).toBe(400);
      expect(asSubject.json()).toMatchObject({ error: 'invalid_request', custos_code: 'CUSTOS_ERR_UNAUTHENTICATED' });
      const delegate = await s.call({ method: 'POST', url: '/v1/tasks/delegate', payload: {} });
      expect(delegate.statusCode).toBe(403);
    });
  });

  describe('a sender-constrained (DPoP) token is useless without its key, and only under its scheme', () => {
    let bound: { token: string; task_id: string };
    beforeAll(async () => {
      bound = await start('bound', { dpop_jkt: dpopKeys.jkt });
    });

    it('a DPoP-bound token with a fresh proof for this request is accepted under the DPoP scheme (control)', async () => {
      const response = await read({ authorization: `DPoP ${bound.token}`, dpop: await proofFor(bound.token) });
      expect(response.statusCode).toBe(200);
    });

    it('a DPoP-bound token is refused under the Bearer scheme, even with a valid proof (RFC 9449 §7.1)', async () => {
      const response = await read({ authorization: `Bearer ${bound.token}`, dpop: await proofFor(bound.token) });
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    });

    it('a DPoP-bound token is refused through X-Custos-Token, even with a valid proof', async () => {
      const response = await read({ 'x-custos-token': bound.token, dpop: await proofFor(bound.token) });
      expect(response.statusCode).toBe(401);
    });

    it('a token without a DPoP binding is refused under the DPoP scheme', async () => {
      const plain = await start('forger');
      const proof = await proofFor(plain.token);
      expect((await read({ authorization: `DPoP ${plain.token}`, dpop: proof })).statusCode).toBe(401);
    });

    it('an operator token is refused under the DPoP scheme', async () => {
      const proof = await proofFor(s.rootToken);
      expect((await read({ authorization: `DPoP ${s.rootToken}`, dpop: proof })).statusCode).toBe(401);
    });

    it('the DPoP scheme without a DPoP proof is refused', async () => {
      expect((await read({ authorization: `DPoP ${bound.token}` })).statusCode).toBe(401);
    });

    it('a DPoP proof made for another URL is refused', async () => {
      const proof = await proofFor(bound.token, { url: `${s.node.services().issuer}/v1/secrets/data/kv/forgery/y` });
      expect((await read({ authorization: `DPoP ${bound.token}`, dpop: proof })).statusCode).toBe(401);
    });

    it('a DPoP proof made for another method is refused', async () => {
      const proof = await proofFor(bound.token, { method: 'DELETE' });
      expect((await read({ authorization: `DPoP ${bound.token}`, dpop: proof })).statusCode).toBe(401);
    });

    it('a DPoP proof made for another token is refused', async () => {
      const other = await start('bound', { dpop_jkt: dpopKeys.jkt });
      const proof = await proofFor(other.token);
      expect((await read({ authorization: `DPoP ${bound.token}`, dpop: proof })).statusCode).toBe(401);
    });

    it('a DPoP proof signed by another key is refused', async () => {
      const proof = await proofFor(bound.token, { keys: await generateDpopKeyPair('ES256') });
      expect((await read({ authorization: `DPoP ${bound.token}`, dpop: proof })).statusCode).toBe(401);
    });

    it('a DPoP proof is single-use', async () => {
      const proof = await proofFor(bound.token);
      expect((await read({ authorization: `DPoP ${bound.token}`, dpop: proof })).statusCode).toBe(200);
      expect((await read({ authorization: `DPoP ${bound.token}`, dpop: proof })).statusCode).toBe(401);
    });

    it('a DPoP-bound subject token cannot be exchanged without a proof of its key (invalid_dpop_proof)', async () => {
      const tokenUrl = `${s.node.services().issuer}/v1/oauth/token`;
      const noProof = await exchange({ subject_token: bound.token });
      expect(noProof.statusCode).toBe(400);
      expect(noProof.json()).toMatchObject({ error: 'invalid_dpop_proof', custos_code: 'CUSTOS_ERR_UNAUTHENTICATED' });
      const otherKey = await proofFor(bound.token, {
        method: 'POST',
        url: tokenUrl,
        keys: await generateDpopKeyPair('ES256'),
      });
      const stolen = await exchange({ subject_token: bound.token }, { dpop: otherKey });
      expect(stolen.statusCode).toBe(400);
      expect(stolen.json()).toMatchObject({ error: 'invalid_dpop_proof' });
      // control: the holder of the key exchanges it, and the child stays bound
      const proof = await proofFor(bound.token, { method: 'POST', url: tokenUrl });
      const child = await exchange({ subject_token: bound.token, scope: 'read:kv/forgery/*' }, { dpop: proof });
      expect(child.statusCode).toBe(200);
      expect(child.json()).toMatchObject({ token_type: 'DPoP' });
    });

    it('two credentials in one request are refused rather than one of them chosen', async () => {
      const plain = await start('forger');
      const response = await read({ authorization: `Bearer ${plain.token}`, 'x-custos-token': s.rootToken });
      expect(response.statusCode).toBe(401);
    });
  });

  describe('custos accepts only tokens it signed, as it signed them', () => {
    let task: { token: string; task_id: string };
    beforeAll(async () => {
      task = await start('forger');
    });

    it('a token re-signed by custos with the claims of a live task is accepted (control for the cases below)', async () => {
      expect((await read({ authorization: `Bearer ${await signedByCustos(task.token)}` })).statusCode).toBe(200);
    });

    it('a token with alg "none" is refused', async () => {
      const forged = resigned(task.token, { alg: 'none', typ: 'custos-task+jwt' }, () => '');
      expect((await read({ authorization: `Bearer ${forged}` })).statusCode).toBe(401);
    });

    it('a token signed with HS256 keyed with the published public key is refused', async () => {
      const jwks = (await s.call({ method: 'GET', url: '/.well-known/jwks.json', token: null })).json();
      const jwk = jwks.keys[0] as { kid: string; x: string };
      for (const key of [Buffer.from(jwk.x, 'base64url'), Buffer.from(JSON.stringify(jwk))]) {
        const forged = resigned(task.token, { alg: 'HS256', kid: jwk.kid, typ: 'custos-task+jwt' }, (input) =>
          createHmac('sha256', key).update(input).digest(),
        );
        expect((await read({ authorization: `Bearer ${forged}` })).statusCode).toBe(401);
      }
    });

    it('a token signed by a key custos never published (unknown kid) is refused', async () => {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
      const kid = createHash('sha256')
        .update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x }))
        .digest('base64url');
      const forged = resigned(task.token, { alg: 'EdDSA', kid, typ: 'custos-task+jwt' }, (input) =>
        sign(null, Buffer.from(input), privateKey as KeyObject),
      );
      expect((await read({ authorization: `Bearer ${forged}` })).statusCode).toBe(401);
    });

    it('a token custos signed for another audience is refused', async () => {
      const forged = await signedByCustos(task.token, { audience: 'billing-api' });
      expect((await read({ authorization: `Bearer ${forged}` })).statusCode).toBe(401);
    });

    it('a token custos signed under another issuer is refused', async () => {
      const forged = await signedByCustos(task.token, { issuer: 'https://custos.attacker.example' });
      expect((await read({ authorization: `Bearer ${forged}` })).statusCode).toBe(401);
    });

    it('an expired token is refused', async () => {
      const now = Date.now() - 3_600_000;
      const expired = await signedByCustos(task.token, { now, exp: Math.floor(now / 1000) + 60 });
      expect((await read({ authorization: `Bearer ${expired}` })).statusCode).toBe(401);
    });

    it('a revoked task’s token, and its children’s, are refused and introspect as inactive', async () => {
      const root = await start('forger');
      const child = await exchange({ subject_token: root.token, scope: 'read:kv/forgery/*' });
      expect(child.statusCode).toBe(200);
      expect((await s.call({ method: 'POST', url: `/v1/tasks/${root.task_id}/revoke` })).statusCode).toBe(200);
      for (const token of [root.token, child.json().access_token as string]) {
        expect((await read({ authorization: `Bearer ${token}` })).statusCode).toBe(401);
        const introspected = await s.call({ method: 'POST', url: '/v1/oauth/introspect', payload: { token } });
        expect(introspected.json()).toEqual({ active: false });
      }
    });
  });

  describe('the token exchange refuses what it does not support instead of ignoring it', () => {
    let task: { token: string };
    beforeAll(async () => {
      task = await start('forger');
    });

    it('an actor token is refused (invalid_request), not ignored', async () => {
      const other = await start('forger');
      const response = await exchange({
        subject_token: task.token,
        actor_token: other.token,
        actor_token_type: JWT_TYPE,
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        error: 'invalid_request',
        custos_code: 'CUSTOS_ERR_UNSUPPORTED_PARAMETER',
      });
    });

    it('an audience custos cannot issue for is refused (invalid_target), not ignored', async () => {
      const response = await exchange({ subject_token: task.token, audience: 'billing-api' });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        error: 'invalid_target',
        custos_code: 'CUSTOS_ERR_UNSUPPORTED_PARAMETER',
      });
    });

    it('an unregistered resource indicator is refused (invalid_target), not ignored', async () => {
      const response = await exchange({ subject_token: task.token, resource: 'https://billing.example/api' });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_target' });
    });

    it('a repeated parameter cannot hide a second audience behind an accepted one', async () => {
      const response = await exchange({ subject_token: task.token, audience: ['custos', 'billing-api'] });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_target' });
      const scopes = await exchange({ subject_token: task.token, scope: ['read:kv/forgery/x', 'read:kv/forgery/*'] });
      expect(scopes.statusCode).toBe(400);
      expect(scopes.json()).toMatchObject({ error: 'invalid_request' });
    });

    it('a requested token type custos does not issue is refused', async () => {
      const response = await exchange({
        subject_token: task.token,
        requested_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_request' });
    });

    it('a subject token whose type is not stated is refused (RFC 8693 §2.1 requires it), and mints nothing', async () => {
      const before = (await s.call({ method: 'GET', url: '/v1/tasks?limit=500' })).json().tasks.length;
      for (const type of [null, '']) {
        const response = await exchange({ subject_token: task.token, subject_token_type: type });
        expect(response.statusCode).toBe(400);
        expect(response.json()).toMatchObject({ error: 'invalid_request' });
        expect(response.json().error_description).toMatch(/subject_token_type/);
        expect(response.body).not.toMatch(/access_token/);
      }
      expect((await s.call({ method: 'GET', url: '/v1/tasks?limit=500' })).json().tasks.length).toBe(before);
    });

    it('a subject token of an unsupported type is refused', async () => {
      const response = await exchange({
        subject_token: task.token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:saml2',
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_request' });
    });
  });

  describe('introspection answers only an authenticated caller, and never vouches for a forgery', () => {
    it('introspection without credentials is answered 401 with a Bearer challenge', async () => {
      const task = await start('forger');
      const response = await s.call({
        method: 'POST',
        url: '/v1/oauth/introspect',
        token: null,
        payload: { token: task.token },
      });
      expect(response.statusCode).toBe(401);
      expect(String(response.headers['www-authenticate'])).toMatch(/^Bearer\b/);
      expect(response.body).not.toContain(task.token);
    });

    it('introspection with a forged caller token is answered 401 invalid_token', async () => {
      const task = await start('forger');
      const forged = resigned(task.token, { alg: 'none', typ: 'custos-task+jwt' }, () => '');
      const response = await s.call({
        method: 'POST',
        url: '/v1/oauth/introspect',
        token: forged,
        payload: { token: task.token },
      });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ error: 'invalid_token' });
      expect(String(response.headers['www-authenticate'])).toContain('error="invalid_token"');
    });

    it('a forged token introspects as inactive', async () => {
      const task = await start('forger');
      const forged = resigned(task.token, { alg: 'none', typ: 'custos-task+jwt' }, () => '');
      const audience = await signedByCustos(task.token, { audience: 'billing-api' });
      for (const token of [forged, audience]) {
        const response = await s.call({ method: 'POST', url: '/v1/oauth/introspect', payload: { token } });
        expect(response.json()).toEqual({ active: false });
      }
    });
  });
});
