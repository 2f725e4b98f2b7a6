/**
 * Measures task-token issue and verify, hand-assembled JWS against jose.
 * Not a test (no timing asserts): run it on an idle machine and read the
 * numbers.
 *
 *     npx vite-node packages/core/src/task-tokens/test-support/task-token-measure.ts
 */
import { randomBytes, sign, verify, webcrypto } from 'node:crypto';
import os from 'node:os';
import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import { delegationActor } from '../task-act-chain.js';
import { TASK_TOKEN_TYP, type TaskTokenInput } from '../task-token-claims.js';
import { issueTaskToken } from '../task-token-issue.js';
import { verifyTaskToken } from '../task-token-verify.js';
import { VerifiedTaskTokenCache } from '../task-token-verify-cache.js';
import { taskKeysFixture } from './task-keys-fixture.js';

const ISSUER = 'https://custos.example';
const AUDIENCE = 'custos';
const N = Number(process.env.N ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);

const { keys } = await taskKeysFixture();
const key = await keys.signingKey();
const now = Date.now();
const exp = Math.floor(now / 1000) + 600;
const root = (
  await issueTaskToken(
    {
      sub: 'role:coordinator/bootstrap:x',
      task_id: 'tsk_root',
      depth: 0,
      role: 'coordinator',
      scope: 'read:kv/*',
      exp,
    },
    { keys, issuer: ISSUER, audience: AUDIENCE },
  )
).claims;
// A realistic child: depth 1, act chain, a few scope entries.
const childInput = (): TaskTokenInput => ({
  sub: 'role:enricher/bootstrap:4f2a9c',
  task_id: `tsk_${randomBytes(16).toString('base64url')}`,
  parent_task_id: root.task_id,
  depth: 1,
  role: 'enricher',
  scope: 'read:kv/finance/enrichment-api issue:db/reporting read:kv/shared/*',
  act: delegationActor(root),
  exp,
});

const issueHand = async () => (await issueTaskToken(childInput(), { keys, issuer: ISSUER, audience: AUDIENCE })).token;
const issueJose = async () => {
  const input = childInput();
  const iat = Math.floor(Date.now() / 1000);
  return new SignJWT({
    ...input,
    parent_task_id: input.parent_task_id ?? null,
    jti: randomBytes(16).toString('base64url'),
  })
    .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: TASK_TOKEN_TYP })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .sign(key.privateKey);
};
const token = await issueHand();
const jwks = createLocalJWKSet(keys.jwks());
const joseOptions = { issuer: ISSUER, audience: AUDIENCE, typ: TASK_TOKEN_TYP, algorithms: ['EdDSA'] };
const verifyHand = () => verifyTaskToken(token, { keys, issuer: ISSUER, audience: AUDIENCE });
const cache = new VerifiedTaskTokenCache();
// Each call a new string object, as tokens arriving in requests are, so V8 cannot reuse a cached hash.
const verifyCachedFresh = () =>
  verifyTaskToken(token.slice(0, 1) + token.slice(1), { keys, issuer: ISSUER, audience: AUDIENCE, cache });
const verifyJoseKey = () => jwtVerify(token, key.publicKey, joseOptions);
const verifyJoseJwks = () => jwtVerify(token, jwks, joseOptions);
const message = Buffer.from(token.slice(0, token.lastIndexOf('.')));
const signature = Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url');
const rawSign = async () => sign(null, message, key.privateKey);
const rawVerify = async () => verify(null, message, key.publicKey, signature);
const rawSubtleVerify = () => webcrypto.subtle.verify('Ed25519', key.verifyKey, signature, message);

/** µs per op, one at a time. */
async function sequential(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await fn();
  return Number(process.hrtime.bigint() - start) / 1_000 / N;
}

/** ops/s with `inFlight` calls outstanding (WebCrypto runs on libuv's pool, so jose may overlap). */
async function concurrent(fn: () => Promise<unknown>, inFlight = 64): Promise<number> {
  let left = N;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (left-- > 0) await fn();
    }),
  );
  return N / (Number(process.hrtime.bigint() - start) / 1e9);
}

const cases = {
  'raw crypto.sign (Ed25519)': rawSign,
  'issueTaskToken (hand JWS)': issueHand,
  'jose SignJWT': issueJose,
  'raw crypto.verify (Ed25519)': rawVerify,
  'raw crypto.subtle.verify (Ed25519)': rawSubtleVerify,
  'verifyTaskToken (hand JWS)': verifyHand,
  'verifyTaskToken, cache hit': verifyCachedFresh,
  'jose jwtVerify (KeyObject)': verifyJoseKey,
  'jose jwtVerify (local JWKS)': verifyJoseJwks,
};
for (const fn of Object.values(cases)) for (let i = 0; i < 2_000; i++) await fn(); // warm up
const seq: Record<string, number[]> = {};
const con: Record<string, number[]> = {};
for (let round = 0; round < ROUNDS; round++) {
  // Interleaved rounds: a burst of load from elsewhere hits every case alike.
  for (const [name, fn] of Object.entries(cases)) {
    const s = seq[name] ?? [];
    const c = con[name] ?? [];
    s.push(await sequential(fn));
    c.push(await concurrent(fn));
    seq[name] = s;
    con[name] = c;
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `${os.cpus()[0]?.model} × ${os.cpus().length}, Node ${process.version}, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(`token: ${token.length} bytes; N=${N}, ${ROUNDS} rounds, median (min)`);
console.log('| operation | µs/op sequential | ops/s, 64 in flight |');
console.log('|---|---:|---:|');
for (const name of Object.keys(cases)) {
  const s = seq[name]!;
  const c = con[name]!;
  console.log(
    `| ${name} | ${median(s).toFixed(1)} (${Math.min(...s).toFixed(1)}) | ${Math.round(median(c))} (max ${Math.round(Math.max(...c))}) |`,
  );
}
