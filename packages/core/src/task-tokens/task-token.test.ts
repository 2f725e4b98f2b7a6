import { createHmac, generateKeyPairSync, randomBytes, sign, webcrypto } from 'node:crypto';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { CustosError, UnauthenticatedError, ValidationError } from '../errors/index.js';
import { actChain, actorSubjects, delegationActor } from './task-act-chain.js';
import { ed25519Thumbprint } from './task-signing-keys.js';
import { MAX_TASK_TOKEN_LENGTH, TASK_TOKEN_TYP, type TaskTokenInput } from './task-token-claims.js';
import { TaskTokenInvalidError, type TaskTokenRefusal } from './task-token-error.js';
import { issueTaskToken } from './task-token-issue.js';
import { signCompactJws } from './task-token-jws.js';
import { type VerifyTaskTokenOptions, verifyTaskToken } from './task-token-verify.js';
import { VerifiedTaskTokenCache } from './task-token-verify-cache.js';
import { FakeClock, taskKeysFixture } from './test-support/task-keys-fixture.js';

const ISSUER = 'https://custos.test';
const AUDIENCE = 'custos';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const taskId = () => `tsk_${randomBytes(16).toString('base64url')}`;

function rootInput(clock: FakeClock, overrides: Partial<TaskTokenInput> = {}): TaskTokenInput {
  return {
    sub: `role:enricher/bootstrap:${randomBytes(6).toString('hex')}`,
    task_id: taskId(),
    depth: 0,
    role: 'enricher',
    scope: 'read:kv/finance/* issue:db/reporting',
    exp: Math.floor(clock.ms / 1000) + 600,
    ...overrides,
  };
}

async function setup() {
  const clock = new FakeClock();
  const fixture = await taskKeysFixture({ now: clock.now, minReloadIntervalMs: 0 });
  const issue = (input: TaskTokenInput, audience: string | string[] = AUDIENCE) =>
    issueTaskToken(input, { keys: fixture.keys, issuer: ISSUER, audience, now: clock.ms });
  const check = (token: string, extra: { now?: number; dpopJkt?: string; audience?: string | string[] } = {}) =>
    verifyTaskToken(token, {
      keys: fixture.keys,
      issuer: ISSUER,
      audience: extra.audience ?? AUDIENCE,
      now: extra.now ?? clock.ms,
      clockToleranceSec: 0,
      ...(extra.dpopJkt === undefined ? {} : { dpopJkt: extra.dpopJkt }),
    });
  /** Signs arbitrary header/payload with the active custos key: a *validly signed* token that custos did not issue. */
  const signAs = async (header: Record<string, unknown>, payload: unknown) => {
    const key = await fixture.keys.signingKey();
    return signCompactJws(b64(header), payload, key.privateKey);
  };
  return { ...fixture, clock, issue, check, signAs };
}

async function refusal(promise: Promise<unknown>): Promise<TaskTokenRefusal> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskTokenInvalidError);
  expect(error).toBeInstanceOf(UnauthenticatedError);
  const e = error as TaskTokenInvalidError;
  // What a client sees: the code and the fixed message, nothing about why.
  expect(e.code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
  expect(e.status).toBe(401);
  expect(JSON.stringify(e)).toBe(
    JSON.stringify({
      code: 'CUSTOS_ERR_UNAUTHENTICATED',
      message: 'Authentication is required or the token is not valid.',
    }),
  );
  return e.auditReason;
}

describe('issueTaskToken / verifyTaskToken', () => {
  it('round-trips a root token with the fixed header and every claim', async () => {
    const { issue, check, keys, clock } = await setup();
    const input = rootInput(clock);
    const { token, claims } = await issue(input);
    const [h, p, s] = token.split('.');
    expect(JSON.parse(Buffer.from(h!, 'base64url').toString())).toEqual({
      alg: 'EdDSA',
      kid: keys.activeKid,
      typ: TASK_TOKEN_TYP,
    });
    expect(Buffer.from(s!, 'base64url')).toHaveLength(64);
    const iat = Math.floor(clock.ms / 1000);
    expect(JSON.parse(Buffer.from(p!, 'base64url').toString())).toEqual({
      iss: ISSUER,
      sub: input.sub,
      aud: AUDIENCE,
      iat,
      nbf: iat,
      exp: input.exp,
      jti: claims.jti,
      task_id: input.task_id,
      parent_task_id: null,
      depth: 0,
      role: 'enricher',
      scope: input.scope,
    });
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(await check(token)).toEqual(claims);
    // A fresh jti per token.
    expect((await issue(input)).claims.jti).not.toBe(claims.jti);
  });

  it('accepts when the expected audience is one of several, and an aud array', async () => {
    const { issue, check, clock } = await setup();
    const { token } = await issue(rootInput(clock), ['custos', 'billing-api']);
    expect((await check(token, { audience: 'billing-api' })).aud).toEqual(['custos', 'billing-api']);
    expect((await check(token, { audience: ['x', 'custos'] })).task_id).toBeTruthy();
    expect(await refusal(check(token, { audience: 'other-api' }))).toBe('wrong_audience');
  });

  it('nests the act chain three levels deep, newest actor outermost', async () => {
    const { issue, check, clock } = await setup();
    const root = (await issue(rootInput(clock, { sub: 'role:coordinator/bootstrap:a1' }))).claims;
    let parent = root;
    const subs = ['spiffe://custos/role/planner', 'role:enricher/jwt:ci', 'role:risk-model/cert:gpu-7'];
    const roles = ['planner', 'enricher', 'risk-model'];
    for (const [i, sub] of subs.entries()) {
      const { token } = await issue({
        sub,
        task_id: taskId(),
        parent_task_id: parent.task_id,
        depth: i + 1,
        role: roles[i]!,
        scope: 'read:kv/finance/*',
        act: delegationActor(parent),
        exp: parent.exp,
      });
      parent = await check(token);
    }
    const leaf = parent;
    expect(leaf.depth).toBe(3);
    expect(leaf.act).toEqual({
      sub: subs[1],
      task_id: leaf.parent_task_id,
      act: { sub: subs[0], task_id: expect.any(String), act: { sub: root.sub, task_id: root.task_id } },
    });
    const chain = actChain(leaf);
    expect(chain).toHaveLength(4);
    expect(chain[0]).toBe(root.task_id);
    expect(chain[2]).toBe(leaf.parent_task_id);
    expect(chain[3]).toBe(leaf.task_id);
    expect(actorSubjects(leaf)).toEqual([root.sub, ...subs]);
    expect(actChain(root)).toEqual([root.task_id]);
  });

  it('refuses inconsistent delegation input and an exp not after iat', async () => {
    const { issue, clock } = await setup();
    const parent = (await issue(rootInput(clock))).claims;
    const child = { ...rootInput(clock), parent_task_id: parent.task_id, depth: 1, act: delegationActor(parent) };
    await expect(issue({ ...child, depth: 2 })).rejects.toBeInstanceOf(ValidationError);
    await expect(issue({ ...child, parent_task_id: null })).rejects.toBeInstanceOf(ValidationError);
    await expect(issue({ ...child, parent_task_id: taskId() })).rejects.toBeInstanceOf(ValidationError);
    await expect(issue({ ...rootInput(clock), act: delegationActor(parent) })).rejects.toBeInstanceOf(ValidationError);
    await expect(issue({ ...rootInput(clock), sub: '' })).rejects.toBeInstanceOf(ValidationError);
    const exp = Math.floor(clock.ms / 1000);
    await expect(issue({ ...rootInput(clock), exp })).rejects.toMatchObject({ code: 'CUSTOS_ERR_INVALID_TTL' });
    await expect(issue(child)).resolves.toBeTruthy();
  });

  it('refuses alg "none", with or without a signature part', async () => {
    const { issue, check, keys, clock } = await setup();
    const { token } = await issue(rootInput(clock));
    const payload = token.split('.')[1];
    const none = b64({ alg: 'none', kid: keys.activeKid, typ: TASK_TOKEN_TYP });
    expect(await refusal(check(`${none}.${payload}.`))).toBe('malformed');
    expect(await refusal(check(`${none}.${payload}.${randomBytes(64).toString('base64url')}`))).toBe('alg_not_allowed');
    const noneLower = b64({ alg: 'None', typ: TASK_TOKEN_TYP });
    expect(await refusal(check(`${noneLower}.${payload}.${randomBytes(64).toString('base64url')}`))).toBe(
      'alg_not_allowed',
    );
  });

  it('refuses HMAC tokens keyed with the public key (algorithm confusion), here and in jose', async () => {
    const { issue, check, keys, clock } = await setup();
    const { token } = await issue(rootInput(clock));
    const payload = token.split('.')[1];
    const jwk = keys.jwks().keys[0]!;
    const publicKeyForms = [
      Buffer.from(jwk.x, 'base64url'),
      Buffer.from(JSON.stringify(jwk)),
      Buffer.from((await keys.signingKey()).publicKey.export({ format: 'pem', type: 'spki' }) as string),
    ];
    for (const secret of publicKeyForms) {
      for (const [alg, hash] of [
        ['HS256', 'sha256'],
        ['HS512', 'sha512'],
      ] as const) {
        const header = b64({ alg, kid: jwk.kid, typ: TASK_TOKEN_TYP });
        const mac = createHmac(hash, secret).update(`${header}.${payload}`).digest('base64url');
        const forged = `${header}.${payload}.${mac}`;
        // HS256's 32-byte MAC is not even a well-formed Ed25519 signature;
        // HS512's 64 bytes are, and the alg check refuses it.
        expect(await refusal(check(forged))).toBe(alg === 'HS256' ? 'malformed' : 'alg_not_allowed');
        await expect(
          jwtVerify(forged, createLocalJWKSet(keys.jwks()), { issuer: ISSUER, audience: AUDIENCE }),
        ).rejects.toThrow();
      }
    }
  });

  it('refuses an unknown kid: a foreign Ed25519 key, and a kid that is not a thumbprint', async () => {
    const { issue, check, clock } = await setup();
    const { token } = await issue(rootInput(clock));
    const payload = token.split('.')[1]!;
    const foreign = generateKeyPairSync('ed25519');
    const foreignKid = ed25519Thumbprint(foreign.publicKey.export({ format: 'jwk' }).x!);
    const header = b64({ alg: 'EdDSA', kid: foreignKid, typ: TASK_TOKEN_TYP });
    const forged = `${header}.${payload}.${sign(null, Buffer.from(`${header}.${payload}`), foreign.privateKey).toString('base64url')}`;
    expect(await refusal(check(forged))).toBe('unknown_kid');
    const odd = b64({ alg: 'EdDSA', kid: 'k1', typ: TASK_TOKEN_TYP });
    expect(await refusal(check(`${odd}.${payload}.${randomBytes(64).toString('base64url')}`))).toBe('unknown_kid');
    const missing = b64({ alg: 'EdDSA', typ: TASK_TOKEN_TYP });
    expect(await refusal(check(`${missing}.${payload}.${randomBytes(64).toString('base64url')}`))).toBe('unknown_kid');
  });

  it('refuses a bad signature and a tampered payload or header', async () => {
    const { issue, check, signAs, keys, clock } = await setup();
    const { token } = await issue(rootInput(clock));
    const [h, p, s] = token.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    sig[10]! ^= 0x01;
    expect(await refusal(check(`${h}.${p}.${sig.toString('base64url')}`))).toBe('bad_signature');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    expect(await refusal(check(`${h}.${b64({ ...payload, scope: 'admin:*' })}.${s}`))).toBe('bad_signature');
    expect(await refusal(check(`${h}.${b64({ ...payload, exp: payload.exp + 86_400 })}.${s}`))).toBe('bad_signature');
    // The same header fields in another order or spacing, or with an extra
    // parameter, are not the header custos writes, even when validly signed.
    const kid = keys.activeKid;
    expect(await refusal(check(`${b64({ kid, alg: 'EdDSA', typ: TASK_TOKEN_TYP })}.${p}.${s}`))).toBe('bad_header');
    for (const extra of [{ crit: ['exp'] }, { jku: 'https://evil.test/jwks' }, { jwk: keys.jwks().keys[0] }]) {
      const signed = await signAs({ alg: 'EdDSA', kid, typ: TASK_TOKEN_TYP, ...extra }, payload);
      expect(await refusal(check(signed))).toBe('bad_header');
    }
  });

  it('refuses a validly signed token with the wrong typ', async () => {
    const { issue, check, signAs, keys, clock } = await setup();
    const { token } = await issue(rootInput(clock));
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    for (const typ of ['JWT', 'at+jwt', 'dpop+jwt', undefined]) {
      const forged = await signAs({ alg: 'EdDSA', kid: keys.activeKid, ...(typ ? { typ } : {}) }, payload);
      expect(await refusal(check(forged))).toBe('typ_mismatch');
    }
  });

  it('refuses expired and not-yet-valid tokens, honouring the clock tolerance', async () => {
    const { issue, check, keys, clock } = await setup();
    const input = rootInput(clock);
    const { token, claims } = await issue(input);
    expect(await check(token, { now: claims.exp * 1000 - 1 })).toBeTruthy();
    expect(await refusal(check(token, { now: claims.exp * 1000 }))).toBe('expired');
    expect(await refusal(check(token, { now: claims.iat * 1000 - 1000 }))).toBe('not_yet_valid');
    const lenient = (now: number) =>
      verifyTaskToken(token, { keys, issuer: ISSUER, audience: AUDIENCE, now, clockToleranceSec: 5 });
    expect(await lenient(claims.exp * 1000 + 4_000)).toBeTruthy();
    expect(await refusal(lenient(claims.exp * 1000 + 5_000))).toBe('expired');
    expect(await lenient(claims.iat * 1000 - 5_000)).toBeTruthy();
    expect(await refusal(lenient(claims.iat * 1000 - 6_000))).toBe('not_yet_valid');
  });

  it('refuses the wrong issuer', async () => {
    const { issue, keys, clock } = await setup();
    const { token } = await issue(rootInput(clock));
    const wrong = verifyTaskToken(token, { keys, issuer: 'https://other.test', audience: AUDIENCE, now: clock.ms });
    expect(await refusal(wrong)).toBe('wrong_issuer');
  });

  it('refuses malformed tokens: shape, alphabet, encoding, JSON and claims', async () => {
    const { issue, check, signAs, keys, clock } = await setup();
    const { token, claims } = await issue(rootInput(clock));
    const [h, p, s] = token.split('.') as [string, string, string];
    const malformed = [
      '',
      'abc',
      `${h}.${p}`,
      `${h}.${p}.${s}.${s}`,
      `${h}..${s}`,
      `.${p}.${s}`,
      `${h}.${p}!.${s}`,
      `${h}.${p}.${s}=`,
      `${h} .${p}.${s}`,
      `${h}.${p}.${s.slice(0, -1)}`,
      // The last character of a 64-byte signature has 4 unused bits: setting
      // one decodes to the same bytes but is not the canonical spelling.
      `${h}.${p}.${s.slice(0, -1)}${String.fromCharCode(s.charCodeAt(s.length - 1) ^ 1)}`,
      `${Buffer.from('{"alg":').toString('base64url')}.${p}.${s}`,
      `${Buffer.from([0xff, 0xfe]).toString('base64url')}.${p}.${s}`,
      `${b64([1, 2])}.${p}.${s}`,
    ];
    for (const t of malformed) expect(await refusal(check(t)), JSON.stringify(t)).toBe('malformed');
    await expect(
      refusal(verifyTaskToken(42 as unknown as string, { keys, issuer: ISSUER, audience: AUDIENCE })),
    ).resolves.toBe('malformed');
    // Validly signed by custos's key, but the payload is not a task token.
    const header = { alg: 'EdDSA', kid: keys.activeKid, typ: TASK_TOKEN_TYP };
    const key = await keys.signingKey();
    const notJson = `${key.encodedHeader}.${Buffer.from('not json').toString('base64url')}`;
    const signedNotJson = `${notJson}.${sign(null, Buffer.from(notJson), key.privateKey).toString('base64url')}`;
    expect(await refusal(check(signedNotJson))).toBe('bad_claims');
    const { task_id: _, ...withoutTaskId } = claims;
    expect(await refusal(check(await signAs(header, withoutTaskId)))).toBe('bad_claims');
    expect(await refusal(check(await signAs(header, { ...claims, depth: 1 })))).toBe('bad_claims');
    expect(await refusal(check(await signAs(header, { ...claims, exp: String(claims.exp) })))).toBe('bad_claims');
    expect(await refusal(check(await signAs(header, { ...claims, exp: claims.iat })))).toBe('bad_claims');
    expect(await refusal(check(await signAs(header, { ...claims, cnf: { jkt: 'x' } })))).toBe('bad_claims');
    expect(await refusal(check(await signAs(header, { ...claims, act: 'role:x' })))).toBe('bad_claims');
    // Unknown extra claims are ignored (a newer node may add some) and not returned.
    expect(await check(await signAs(header, { ...claims, future: true }))).toEqual(claims);
  });

  it('refuses an oversized token unread and never issues one', async () => {
    const { issue, check, clock } = await setup();
    const { token } = await issue(rootInput(clock));
    const padded = `${token.split('.')[0]}.${'A'.repeat(MAX_TASK_TOKEN_LENGTH)}.${token.split('.')[2]}`;
    expect(await refusal(check(padded))).toBe('oversized');
    const huge = Array.from({ length: 400 }, (_, i) => `read:kv/team-${i}/*`).join(' ');
    await expect(issue(rootInput(clock, { scope: huge }))).rejects.toBeInstanceOf(ValidationError);
  });

  it('binds a DPoP token to its key: refused without or with another proof key', async () => {
    const { issue, check, clock } = await setup();
    const agentKey = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
    const jkt = ed25519Thumbprint(agentKey.x!);
    const { token } = await issue(rootInput(clock, { cnf: { jkt } }));
    expect((await check(token, { dpopJkt: jkt })).cnf).toEqual({ jkt });
    expect(await refusal(check(token))).toBe('dpop_proof_required');
    expect(await refusal(check(token, { dpopJkt: ed25519Thumbprint(randomBytes(32).toString('base64url')) }))).toBe(
      'dpop_key_mismatch',
    );
    await expect(issue(rootInput(clock, { cnf: { jkt: 'short' } }))).rejects.toBeInstanceOf(ValidationError);
  });

  it('verifies offline in a downstream service with jose and the published JWKS', async () => {
    const { issue, keys, clock } = await setup();
    const { token, claims } = await issue(rootInput(clock));
    // What a downstream service does: fetch /.well-known/jwks.json once and verify locally.
    const jwks = createLocalJWKSet(JSON.parse(JSON.stringify(keys.jwks())));
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: TASK_TOKEN_TYP,
      algorithms: ['EdDSA'],
      currentDate: new Date(clock.ms),
    });
    expect(protectedHeader).toEqual({ alg: 'EdDSA', kid: keys.activeKid, typ: TASK_TOKEN_TYP });
    expect(payload).toEqual(JSON.parse(JSON.stringify(claims)));
    // And jose refuses what custos refuses: a tampered payload.
    const [h, , s] = token.split('.');
    const tampered = `${h}.${b64({ ...claims, scope: 'admin:*' })}.${s}`;
    await expect(jwtVerify(tampered, jwks, { currentDate: new Date(clock.ms) })).rejects.toThrow();
  });

  it('fails closed with a plain CustosError for nothing else: verify never throws a non-auth error for bad input', async () => {
    const { check } = await setup();
    for (const t of ['a.b.c', '..', `${'x'.repeat(10)}.${'y'.repeat(10)}.${'z'.repeat(86)}`]) {
      const e = await check(t).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(CustosError);
      expect((e as CustosError).code).toBe('CUSTOS_ERR_UNAUTHENTICATED');
    }
  });
});

describe('verifyTaskToken with a VerifiedTaskTokenCache', () => {
  it('skips the signature check for the identical token but re-checks time, issuer, audience and DPoP', async () => {
    const { issue, keys, clock } = await setup();
    const cache = new VerifiedTaskTokenCache();
    const jkt = ed25519Thumbprint(randomBytes(32).toString('base64url'));
    const { token, claims } = await issue(rootInput(clock, { cnf: { jkt } }));
    const run = (extra: Partial<VerifyTaskTokenOptions> = {}) =>
      verifyTaskToken(token, {
        keys,
        issuer: ISSUER,
        audience: AUDIENCE,
        now: clock.ms,
        clockToleranceSec: 0,
        cache,
        dpopJkt: jkt,
        ...extra,
      });
    expect(await run()).toEqual(claims);
    expect(cache.size).toBe(1);
    const spy = vi.spyOn(webcrypto.subtle, 'verify');
    try {
      const again = await run();
      expect(again).toEqual(claims);
      expect(Object.isFrozen(again) && Object.isFrozen(again.cnf)).toBe(true);
      expect(await refusal(run({ now: claims.exp * 1000 }))).toBe('expired');
      expect(await refusal(run({ audience: 'other' }))).toBe('wrong_audience');
      expect(await refusal(run({ issuer: 'https://other.test' }))).toBe('wrong_issuer');
      expect(await refusal(run({ dpopJkt: undefined }))).toBe('dpop_proof_required');
      expect(spy).not.toHaveBeenCalled();
      // A different spelling of the same token is not a hit.
      const [h, p, s] = token.split('.') as [string, string, string];
      const sig = Buffer.from(s, 'base64url');
      sig[0]! ^= 1;
      const flipped = `${h}.${p}.${sig.toString('base64url')}`;
      const opts = { keys, issuer: ISSUER, audience: AUDIENCE, now: clock.ms, cache };
      expect(await refusal(verifyTaskToken(flipped, opts))).toBe('bad_signature');
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
    // Refused tokens never enter the cache.
    expect(cache.size).toBe(1);
    // A reload of the key set (every refresh interval) keeps the hits.
    await keys.reload();
    await keys.rotate({ retireAfterMs: 3_600_000 });
    const spy2 = vi.spyOn(webcrypto.subtle, 'verify');
    try {
      expect(await run()).toEqual(claims);
      expect(spy2).not.toHaveBeenCalled();
    } finally {
      spy2.mockRestore();
    }
  });

  it('drops a hit whose key has retired', async () => {
    const { issue, keys, clock } = await setup();
    const cache = new VerifiedTaskTokenCache();
    const { token } = await issue(rootInput(clock, { exp: Math.floor(clock.ms / 1000) + 3600 }));
    const run = () => verifyTaskToken(token, { keys, issuer: ISSUER, audience: AUDIENCE, now: clock.ms, cache });
    await run();
    await keys.rotate({ retireAfterMs: 60_000 });
    await run();
    clock.advance(60_000);
    expect(await refusal(run())).toBe('unknown_kid');
    expect(cache.size).toBe(0);
  });

  it('is bounded: the oldest entry goes first', async () => {
    const { issue, keys, clock } = await setup();
    const cache = new VerifiedTaskTokenCache(2);
    const tokens = await Promise.all([1, 2, 3].map(async () => (await issue(rootInput(clock))).token));
    for (const t of tokens)
      await verifyTaskToken(t, { keys, issuer: ISSUER, audience: AUDIENCE, now: clock.ms, cache });
    expect(cache.size).toBe(2);
    expect(cache.get(VerifiedTaskTokenCache.digest(tokens[0]!))).toBeUndefined();
    expect(cache.get(VerifiedTaskTokenCache.digest(tokens[2]!))).toBeDefined();
  });

  it('ignoreDpopBinding (introspection) accepts a bound token without a proof', async () => {
    const { issue, keys, clock } = await setup();
    const jkt = ed25519Thumbprint(randomBytes(32).toString('base64url'));
    const { token } = await issue(rootInput(clock, { cnf: { jkt } }));
    const claims = await verifyTaskToken(token, {
      keys,
      issuer: ISSUER,
      audience: AUDIENCE,
      now: clock.ms,
      ignoreDpopBinding: true,
    });
    expect(claims.cnf).toEqual({ jkt });
  });
});
