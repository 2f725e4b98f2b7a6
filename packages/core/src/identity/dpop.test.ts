import { createHash } from 'node:crypto';
import { base64url, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { UnauthenticatedError } from '../errors/index.js';
import { normalizeHtu } from './dpop-htu.js';
import { createDpopProof, type DpopKeyPair, generateDpopKeyPair } from './dpop-proof-create.js';
import { type VerifyDpopProofOptions, verifyDpopProof } from './dpop-proof-verify.js';
import { type DpopReplayCache, MemoryDpopReplayCache } from './dpop-replay-cache.js';
import { IdentityRejectedError } from './identity-rejected-error.js';
import { jwkThumbprint } from './jwk-thumbprint.js';

const URL_ = 'https://custos.example/v1/secrets/kv/app';
const token = () => `cus_test_${base64url.encode(crypto.getRandomValues(new Uint8Array(24)))}`;

async function expectRejected(p: Promise<unknown>, reason: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(IdentityRejectedError);
  expect(e).toBeInstanceOf(UnauthenticatedError);
  expect((e as IdentityRejectedError).auditReason).toBe(reason);
  expect((e as IdentityRejectedError).method).toBe('dpop');
}

function opts(over: Partial<VerifyDpopProofOptions> = {}): VerifyDpopProofOptions {
  return { method: 'GET', url: URL_, replay: new MemoryDpopReplayCache(), ...over };
}

/** Signs arbitrary DPoP-like headers and claims with `keys`, for forged proofs. */
async function forge(
  keys: DpopKeyPair,
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: keys.publicJwk, ...header })
    .sign(keys.privateKey);
}

const fresh = () => ({
  jti: base64url.encode(crypto.getRandomValues(new Uint8Array(16))),
  htm: 'GET',
  htu: URL_,
  iat: Math.floor(Date.now() / 1000),
});

describe('jwkThumbprint', () => {
  it('matches the RFC 7638 §3.1 example', async () => {
    // The public RSA key printed in RFC 7638 (public material only).
    const rfcKey: JWK = {
      kty: 'RSA',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
      e: 'AQAB',
      alg: 'RS256',
      kid: '2011-04-29',
    };
    await expect(jwkThumbprint(rfcKey)).resolves.toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  it('ignores optional members', async () => {
    const { publicJwk, jkt } = await generateDpopKeyPair();
    await expect(jwkThumbprint({ ...publicJwk, kid: 'k1', use: 'sig', alg: 'ES256' })).resolves.toBe(jkt);
  });
});

describe('normalizeHtu', () => {
  it('drops query and fragment and normalises case, default port, dot segments and percent-encoding', () => {
    expect(normalizeHtu('HTTPS://Custos.Example:443/v1/./a/../x?q=1#f')).toBe('https://custos.example/v1/x');
    expect(normalizeHtu('https://custos.example/%7euser/%2f')).toBe('https://custos.example/~user/%2F');
    expect(normalizeHtu('https://custos.example:8443/v1')).toBe('https://custos.example:8443/v1');
    expect(normalizeHtu('ftp://custos.example/v1')).toBeUndefined();
    expect(normalizeHtu('/v1/relative')).toBeUndefined();
    expect(normalizeHtu('https://u:p@custos.example/')).toBeUndefined();
  });
});

describe('createDpopProof + verifyDpopProof', () => {
  it.each(['ES256', 'EdDSA'] as const)('round-trips with a %s key and binds to an access token', async (alg) => {
    const keys = await generateDpopKeyPair(alg);
    const accessToken = token();
    const proof = await createDpopProof({ ...keys, method: 'POST', url: `${URL_}?version=2#x`, accessToken });
    const got = await verifyDpopProof(proof, opts({ method: 'POST', accessToken, expectedJkt: keys.jkt }));
    expect(got.jkt).toBe(keys.jkt);
    expect(got.publicJwk).toEqual(keys.publicJwk);
    expect(got.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('round-trips with an RSA key (PS256) and never embeds private members', async () => {
    const { privateKey, publicKey } = await generateKeyPair('PS256', { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    expect(privateJwk.d).toBeDefined();
    // The caller passes the private JWK by mistake: only public members go out.
    const proof = await createDpopProof({ privateKey, publicJwk: privateJwk, method: 'GET', url: URL_ });
    const header = JSON.parse(Buffer.from(proof.split('.')[0] as string, 'base64url').toString());
    expect(Object.keys(header.jwk).sort()).toEqual(['e', 'kty', 'n']);
    const got = await verifyDpopProof(proof, opts());
    expect(got.jkt).toBe(await jwkThumbprint(await exportJWK(publicKey)));
  });

  it('accepts a precomputed ath', async () => {
    const keys = await generateDpopKeyPair();
    const accessToken = token();
    const ath = createHash('sha256').update(accessToken).digest('base64url');
    const proof = await createDpopProof({ ...keys, method: 'GET', url: URL_, accessToken });
    await expect(verifyDpopProof(proof, opts({ accessTokenHash: ath }))).resolves.toBeDefined();
  });

  it('refuses a replayed proof, but not the same jti from another key', async () => {
    const replay = new MemoryDpopReplayCache();
    const [a, b] = await Promise.all([generateDpopKeyPair(), generateDpopKeyPair()]);
    const claims = fresh();
    const proof = await forge(a, {}, claims);
    await verifyDpopProof(proof, opts({ replay }));
    await expectRejected(verifyDpopProof(proof, opts({ replay })), 'replayed');
    await expect(verifyDpopProof(await forge(b, {}, claims), opts({ replay }))).resolves.toBeDefined();
  });

  it('refuses a proof for another method or URL', async () => {
    const keys = await generateDpopKeyPair();
    const proof = () => createDpopProof({ ...keys, method: 'GET', url: URL_ });
    await expectRejected(verifyDpopProof(await proof(), opts({ method: 'POST' })), 'htm_mismatch');
    await expectRejected(verifyDpopProof(await proof(), opts({ method: 'get' })), 'htm_mismatch');
    await expectRejected(
      verifyDpopProof(await proof(), opts({ url: 'https://custos.example/v1/secrets/kv/other' })),
      'htu_mismatch',
    );
    await expectRejected(
      verifyDpopProof(await proof(), opts({ url: 'https://evil.example/v1/secrets/kv/app' })),
      'htu_mismatch',
    );
    await expectRejected(
      verifyDpopProof(await proof(), opts({ url: 'http://custos.example/v1/secrets/kv/app' })),
      'htu_mismatch',
    );
    // Query and fragment of the request do not matter.
    await expect(verifyDpopProof(await proof(), opts({ url: `${URL_}?a=1` }))).resolves.toBeDefined();
  });

  it('refuses a stale proof and one from the future, within tolerances', async () => {
    const keys = await generateDpopKeyPair();
    const at = (offsetSec: number) =>
      createDpopProof({ ...keys, method: 'GET', url: URL_, now: Date.now() + offsetSec * 1000 });
    await expectRejected(verifyDpopProof(await at(-120), opts()), 'too_old');
    await expectRejected(verifyDpopProof(await at(60), opts()), 'issued_in_future');
    await expect(verifyDpopProof(await at(-50), opts())).resolves.toBeDefined();
    await expect(verifyDpopProof(await at(3), opts())).resolves.toBeDefined();
    await expectRejected(verifyDpopProof(await at(-50), opts({ maxAgeSec: 30 })), 'too_old');
  });

  it('refuses a proof not bound to the presented access token or its key', async () => {
    const [keys, other] = await Promise.all([generateDpopKeyPair(), generateDpopKeyPair()]);
    const accessToken = token();
    const bound = await createDpopProof({ ...keys, method: 'GET', url: URL_, accessToken });
    await expectRejected(verifyDpopProof(bound, opts({ accessToken: token() })), 'ath_mismatch');
    const unbound = await createDpopProof({ ...keys, method: 'GET', url: URL_ });
    await expectRejected(verifyDpopProof(unbound, opts({ accessToken })), 'ath_mismatch');
    // A thief with the token but their own key: the thumbprint does not match cnf.jkt.
    const stolen = await createDpopProof({ ...other, method: 'GET', url: URL_, accessToken });
    await expectRejected(verifyDpopProof(stolen, opts({ accessToken, expectedJkt: keys.jkt })), 'jkt_mismatch');
  });

  it('checks a server nonce when one is required', async () => {
    const keys = await generateDpopKeyPair();
    const proof = await createDpopProof({ ...keys, method: 'GET', url: URL_, nonce: 'n-1' });
    await expectRejected(verifyDpopProof(proof, opts({ nonce: 'n-2' })), 'nonce_mismatch');
    await expect(verifyDpopProof(proof, opts({ nonce: 'n-1' }))).resolves.toBeDefined();
  });
});

describe('verifyDpopProof refuses forged proofs', () => {
  it('without typ dpop+jwt', async () => {
    const keys = await generateDpopKeyPair();
    await expectRejected(verifyDpopProof(await forge(keys, { typ: 'JWT' }, fresh()), opts()), 'wrong_type');
    await expectRejected(
      verifyDpopProof(await forge(keys, { typ: 'application/dpop+jwt' }, fresh()), opts()),
      'wrong_type',
    );
  });

  it('with alg none or a symmetric alg', async () => {
    const keys = await generateDpopKeyPair();
    const h = base64url.encode(JSON.stringify({ typ: 'dpop+jwt', alg: 'none', jwk: keys.publicJwk }));
    const p = base64url.encode(JSON.stringify(fresh()));
    await expectRejected(verifyDpopProof(`${h}.${p}.`, opts()), 'algorithm_not_allowed');
    const hs = await new SignJWT(fresh())
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: keys.publicJwk })
      .sign(new TextEncoder().encode(JSON.stringify(keys.publicJwk)));
    await expectRejected(verifyDpopProof(hs, opts()), 'algorithm_not_allowed');
    await expectRejected(verifyDpopProof(hs, opts({ algorithms: ['HS256', 'ES256'] })), 'algorithm_not_allowed');
  });

  it('with a missing, private, symmetric or mismatched embedded key', async () => {
    const keys = await generateDpopKeyPair();
    await expectRejected(verifyDpopProof(await forge(keys, { jwk: undefined }, fresh()), opts()), 'bad_key');
    await expectRejected(
      verifyDpopProof(await forge(keys, { jwk: { ...keys.publicJwk, d: 'AAAA' } }, fresh()), opts()),
      'bad_key',
    );
    await expectRejected(
      verifyDpopProof(await forge(keys, { jwk: { kty: 'oct', k: 'AAAA' } }, fresh()), opts()),
      'bad_key',
    );
    await expectRejected(
      verifyDpopProof(await forge(keys, { jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' } }, fresh()), opts()),
      'bad_key',
    );
    // Signed by one key, claiming another.
    const other = await generateDpopKeyPair();
    await expectRejected(
      verifyDpopProof(await forge(keys, { jwk: other.publicJwk }, fresh()), opts()),
      'bad_signature',
    );
  });

  it('with a tampered payload', async () => {
    const keys = await generateDpopKeyPair();
    const [h, , s] = (await createDpopProof({ ...keys, method: 'GET', url: URL_ })).split('.');
    const evil = base64url.encode(JSON.stringify({ ...fresh(), htm: 'DELETE' }));
    await expectRejected(verifyDpopProof(`${h}.${evil}.${s}`, opts({ method: 'DELETE' })), 'bad_signature');
  });

  it('without jti, htm, htu or iat', async () => {
    const keys = await generateDpopKeyPair();
    for (const claim of ['jti', 'htm', 'htu', 'iat'] as const) {
      const claims: Record<string, unknown> = fresh();
      delete claims[claim];
      await expectRejected(verifyDpopProof(await forge(keys, {}, claims), opts()), 'missing_claim');
    }
  });

  it('that is garbage or oversized', async () => {
    await expectRejected(verifyDpopProof('garbage', opts()), 'malformed');
    await expectRejected(verifyDpopProof('x'.repeat(10_000), opts()), 'too_large');
  });

  it('without touching the replay cache', async () => {
    let calls = 0;
    const replay: DpopReplayCache = {
      seen: () => {
        calls++;
        return false;
      },
    };
    const [keys, other] = await Promise.all([generateDpopKeyPair(), generateDpopKeyPair()]);
    await expectRejected(
      verifyDpopProof(await forge(keys, { jwk: other.publicJwk }, fresh()), opts({ replay })),
      'bad_signature',
    );
    await expectRejected(
      verifyDpopProof(await forge(keys, {}, fresh()), opts({ replay, expectedJkt: other.jkt })),
      'jkt_mismatch',
    );
    await expectRejected(
      verifyDpopProof(await forge(keys, {}, fresh()), opts({ replay, accessToken: token() })),
      'ath_mismatch',
    );
    expect(calls).toBe(0);
  });
});

describe('MemoryDpopReplayCache', () => {
  it('forgets entries once they expire', () => {
    let now = 1_000_000;
    const cache = new MemoryDpopReplayCache({ now: () => now });
    expect(cache.seen('a', now + 60_000)).toBe(false);
    expect(cache.seen('a', now + 60_000)).toBe(true);
    now += 60_001;
    expect(cache.seen('b', now + 60_000)).toBe(false);
    expect(cache.size).toBe(1); // 'a' swept
    expect(cache.seen('a', now + 60_000)).toBe(false);
  });

  it('refuses new proofs when full of live entries instead of evicting them', async () => {
    let now = Date.now();
    const replay = new MemoryDpopReplayCache({ maxEntries: 2, now: () => now });
    const keys = await generateDpopKeyPair();
    const first = await createDpopProof({ ...keys, method: 'GET', url: URL_, now });
    await verifyDpopProof(first, opts({ replay, now }));
    await verifyDpopProof(await createDpopProof({ ...keys, method: 'GET', url: URL_, now }), opts({ replay, now }));
    const third = await createDpopProof({ ...keys, method: 'GET', url: URL_, now });
    await expectRejected(verifyDpopProof(third, opts({ replay, now })), 'replay_unavailable');
    // The first proof is still remembered: no eviction reopened replay.
    await expectRejected(verifyDpopProof(first, opts({ replay, now })), 'replayed');
    // Once the window has passed, room is made again.
    now += 62_000;
    const later = await createDpopProof({ ...keys, method: 'GET', url: URL_, now });
    await expect(verifyDpopProof(later, opts({ replay, now }))).resolves.toBeDefined();
  });
});
