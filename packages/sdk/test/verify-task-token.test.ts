import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Custos,
  CustosUnreachableError,
  CustosUsageError,
  createRemoteJwks,
  InsufficientScopeError,
  TaskTokenInvalidError,
  verifyTaskToken,
} from '../src/index.js';
import { bootstrapToken, type ListeningServer, setUpAgentRole, startListeningServer } from './sdk-test-server.js';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const parts = (token: string) => token.split('.') as [string, string, string];
const header = (token: string) => JSON.parse(Buffer.from(parts(token)[0], 'base64url').toString()) as { kid: string };
const payload = (token: string) => JSON.parse(Buffer.from(parts(token)[1], 'base64url').toString());

/** The reason a verification was refused (the test fails if it was not). */
async function reason(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskTokenInvalidError);
  expect((error as TaskTokenInvalidError).message).toBe('Authentication is required or the token is not valid.');
  return (error as TaskTokenInvalidError).reason;
}

describe('verifyTaskToken: offline verification of tokens the real server mints', () => {
  let s: ListeningServer;
  let issuer: string;
  let jwksUrl: string;
  let custos: Custos;
  const login = async (scope?: string) =>
    custos.loginWithBootstrap(await bootstrapToken(s), { ttl: '5m', ...(scope ? { scope } : {}) });

  beforeAll(async () => {
    s = await startListeningServer();
    await setUpAgentRole(s);
    await setUpAgentRole(s, 'bound-agent', { require_dpop: true });
    issuer = s.node.services().issuer;
    jwksUrl = `${s.address}/.well-known/jwks.json`;
    custos = new Custos({ address: s.address });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('accepts a task token the server minted — as jose does — with its claims and scope', async () => {
    const task = await login('read:kv/team/* issue:pg-main/reader delegate:sys/tasks/*');
    const child = await task.delegate({ scope: 'read:kv/team/db', ttl: '1m' });
    const verified = await verifyTaskToken(child.token, { issuer, jwksUrl, requiredScope: 'read:kv/team/db' });
    expect(verified).toMatchObject({
      iss: issuer,
      aud: 'custos',
      task_id: child.id,
      parent_task_id: task.id,
      depth: 1,
      role: 'agent',
      scope: 'read:kv/team/db',
      act: { task_id: task.id },
    });
    // The same token, through jose with the documented options (docs/task-tokens.md).
    const { payload: joseClaims } = await jwtVerify(child.token, createRemoteJWKSet(new URL(jwksUrl)), {
      issuer,
      audience: 'custos',
      typ: 'custos-task+jwt',
      algorithms: ['EdDSA'],
    });
    expect(joseClaims.task_id).toBe(verified.task_id);
    // A parent's scope covers more.
    await verifyTaskToken(task.token, { issuer, jwksUrl, requiredScope: 'read:kv/team/a/b issue:pg-main/reader' });
    await task.end();
  });

  it('refuses a scope the token does not cover, with the server’s semantics (403, not 401)', async () => {
    const task = await login('read:kv/team/db list:kv/team/');
    for (const required of ['read:kv/team/other', 'read:kv/team/*', 'write:kv/team/db', 'list:kv/team/x']) {
      const error = await verifyTaskToken(task.token, { issuer, jwksUrl, requiredScope: required }).catch((e) => e);
      expect(error, required).toBeInstanceOf(InsufficientScopeError);
      expect(error).toMatchObject({ code: 'CUSTOS_ERR_PERMISSION_DENIED', status: 403, requiredScope: required });
    }
    await expect(
      verifyTaskToken(task.token, { issuer, jwksUrl, requiredScope: 'read:kv/../x' }),
    ).rejects.toBeInstanceOf(CustosUsageError);
    await expect(verifyTaskToken(task.token, { issuer: '', jwksUrl })).rejects.toBeInstanceOf(CustosUsageError);
    await task.end();
  });

  it('refuses the wrong issuer or audience, an expired or not-yet-valid token — with leeway for clock skew', async () => {
    const task = await login();
    const claims = payload(task.token) as { exp: number; nbf: number };
    expect(await reason(verifyTaskToken(task.token, { issuer: 'https://other.example', jwksUrl }))).toBe(
      'wrong_issuer',
    );
    expect(await reason(verifyTaskToken(task.token, { issuer, jwksUrl, audience: 'billing-api' }))).toBe(
      'wrong_audience',
    );
    const at = (sec: number) => ({ issuer, jwksUrl, now: sec * 1000 });
    expect(await reason(verifyTaskToken(task.token, at(claims.exp + 5)))).toBe('expired');
    await verifyTaskToken(task.token, at(claims.exp + 4)); // within the 5 s leeway
    expect(await reason(verifyTaskToken(task.token, at(claims.nbf - 6)))).toBe('not_yet_valid');
    await verifyTaskToken(task.token, at(claims.nbf - 5));
    await task.end();
  });

  it('refuses forged tokens: tampered claims, alg none, HMAC keyed with the public key, odd headers, unknown keys', async () => {
    const task = await login('read:kv/team/db');
    const [h, p, sig] = parts(task.token);
    const options = { issuer, jwksUrl };
    const wider = b64({ ...payload(task.token), scope: 'read:kv/*' });
    expect(await reason(verifyTaskToken(`${h}.${wider}.${sig}`, options))).toBe('bad_signature');

    const { kid } = header(task.token);
    const jwk = (await (await fetch(jwksUrl)).json()).keys.find((k: { kid: string }) => k.kid === kid);
    const hmac = (head: unknown) => {
      const input = `${b64(head)}.${p}`;
      // HS512: a 64-byte MAC, the length of an Ed25519 signature, so only the algorithm check stands in its way.
      return `${input}.${createHmac('sha512', Buffer.from(jwk.x, 'base64url')).update(input).digest('base64url')}`;
    };
    expect(await reason(verifyTaskToken(hmac({ alg: 'HS512', kid, typ: 'custos-task+jwt' }), options))).toBe(
      'alg_not_allowed',
    );
    expect(await reason(verifyTaskToken(`${b64({ alg: 'none', typ: 'custos-task+jwt' })}.${p}.`, options))).toBe(
      'malformed',
    );
    expect(
      await reason(verifyTaskToken(`${b64({ alg: 'none', kid, typ: 'custos-task+jwt' })}.${p}.${sig}`, options)),
    ).toBe('alg_not_allowed');
    expect(await reason(verifyTaskToken(`${b64({ alg: 'EdDSA', kid, typ: 'JWT' })}.${p}.${sig}`, options))).toBe(
      'typ_mismatch',
    );
    for (const extra of [{ crit: ['exp'] }, { jku: 'https://evil.example/jwks' }, { jwk }]) {
      const head = b64({ alg: 'EdDSA', kid, typ: 'custos-task+jwt', ...extra });
      expect(await reason(verifyTaskToken(`${head}.${p}.${sig}`, options))).toBe('bad_header');
    }
    const otherKid = b64({ alg: 'EdDSA', kid: 'A'.repeat(43), typ: 'custos-task+jwt' });
    expect(await reason(verifyTaskToken(`${otherKid}.${p}.${sig}`, options))).toBe('unknown_kid');
    expect(await reason(verifyTaskToken(`${task.token}x`, options))).toBe('malformed');
    expect(await reason(verifyTaskToken('x'.repeat(9000), options))).toBe('oversized');
    await task.end();
  });

  it('refuses a DPoP-bound token without its verified proof key, and takes it with the matching one', async () => {
    const jkt = 'N'.repeat(43);
    const response = await fetch(`${s.address}/v1/auth/bootstrap/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: await bootstrapToken(s, 'bound-agent'), dpop_jkt: jkt }),
    });
    const bound = (await response.json()) as { token: string; token_type: string };
    expect(bound.token_type).toBe('DPoP');
    expect(await reason(verifyTaskToken(bound.token, { issuer, jwksUrl }))).toBe('dpop_proof_required');
    expect(await reason(verifyTaskToken(bound.token, { issuer, jwksUrl, dpopJkt: 'M'.repeat(43) }))).toBe(
      'dpop_key_mismatch',
    );
    expect((await verifyTaskToken(bound.token, { issuer, jwksUrl, dpopJkt: jkt })).cnf).toEqual({ jkt });
  });

  it('follows key rotation: a new key is fetched on its first token; a retired one is refused once the set is refetched', async () => {
    const jwks = createRemoteJwks(jwksUrl, { cooldownMs: 0, maxAgeMs: 1_000 });
    const before = await login();
    await verifyTaskToken(before.token, { issuer, jwks });
    // The replaced key stays published and valid for 1.5 s after the new one is active.
    const newKid = await s.node.services().taskKeys.rotate({ retireAfterMs: 1_500 });
    const after = await login();
    expect(header(after.token).kid).toBe(newKid);
    expect(header(after.token).kid).not.toBe(header(before.token).kid);
    await verifyTaskToken(after.token, { issuer, jwks }); // unknown kid → one refetch → known
    await verifyTaskToken(before.token, { issuer, jwks }); // still published until retired

    // Once retired, the server stops publishing it; the verifier's set goes stale (max age 1 s) and is refetched.
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    const published = (await (await fetch(jwksUrl)).json()).keys.map((k: { kid: string }) => k.kid);
    expect(published).not.toContain(header(before.token).kid);
    expect(await reason(verifyTaskToken(before.token, { issuer, jwks }))).toBe('unknown_kid');
  });

  it('random kids cannot make it hammer custos: unknown kids cause at most one fetch per cooldown', async () => {
    let fetches = 0;
    const keys = s.node.services().taskKeys;
    const counting: Server = createServer((_request, response) => {
      fetches++;
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify(keys.jwks()));
    });
    await new Promise<void>((resolve) => counting.listen(0, '127.0.0.1', resolve));
    try {
      const jwks = createRemoteJwks(`http://127.0.0.1:${(counting.address() as AddressInfo).port}/jwks.json`);
      const task = await login();
      await verifyTaskToken(task.token, { issuer, jwks });
      expect(fetches).toBe(1);
      const [, p, sig] = parts(task.token);
      for (let i = 0; i < 50; i++) {
        const forged = b64({ alg: 'EdDSA', kid: `forged-${i}-${Math.random()}`, typ: 'custos-task+jwt' });
        expect(await reason(verifyTaskToken(`${forged}.${p}.${sig}`, { issuer, jwks }))).toBe('unknown_kid');
      }
      expect(fetches).toBe(1);
      // The warm path makes no request either.
      for (let i = 0; i < 10; i++) await verifyTaskToken(task.token, { issuer, jwks });
      expect(fetches).toBe(1);
      await task.end();
    } finally {
      await new Promise<void>((resolve) => counting.close(() => resolve()));
    }
  });

  it('uses only Ed25519 keys of a JWKS, and refuses an oversized one', async () => {
    const task = await login();
    const { kid } = header(task.token);
    const real = (await (await fetch(jwksUrl)).json()).keys.find((k: { kid: string }) => k.kid === kid);
    let served: unknown;
    const hostile: Server = createServer((_request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(typeof served === 'string' ? served : JSON.stringify(served));
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/jwks.json`;
    try {
      // The token's kid on keys of other types or uses: none is taken, so the kid stays unknown.
      served = {
        keys: [
          { kty: 'oct', kid, k: real.x, alg: 'HS256' },
          { ...real, use: 'enc' },
          { ...real, alg: 'ES256' },
          { ...real, d: real.x },
        ],
      };
      expect(await reason(verifyTaskToken(task.token, { issuer, jwks: createRemoteJwks(url) }))).toBe('unknown_kid');
      // The genuine key, served the same way, verifies: the refusals above are about the entries, not the server.
      served = { keys: [real] };
      await verifyTaskToken(task.token, { issuer, jwks: createRemoteJwks(url) });
      served = JSON.stringify({ keys: [real], padding: 'x'.repeat(300 * 1024) });
      await expect(verifyTaskToken(task.token, { issuer, jwks: createRemoteJwks(url) })).rejects.toMatchObject({
        code: 'CUSTOS_ERR_PROTOCOL',
      });
    } finally {
      await new Promise<void>((resolve) => hostile.close(() => resolve()));
      await task.end();
    }
  });

  it('reports custos’s keys out of reach as unreachable, not as a bad token', async () => {
    const task = await login();
    const jwks = createRemoteJwks('http://127.0.0.1:1/.well-known/jwks.json', { timeoutMs: 1_000 });
    await expect(verifyTaskToken(task.token, { issuer, jwks })).rejects.toBeInstanceOf(CustosUnreachableError);
    await task.end();
  });
});
