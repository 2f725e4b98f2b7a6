import { generateKeyPairSync, verify } from 'node:crypto';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { ed25519Thumbprint } from './task-signing-keys.js';
import { TASK_TOKEN_TYP } from './task-token-claims.js';
import { decodeJsonPart, encodeTaskTokenHeader, signCompactJws, splitCompactJws } from './task-token-jws.js';

describe('signCompactJws', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const kid = ed25519Thumbprint(publicKey.export({ format: 'jwk' }).x!);

  it('produces a compact JWS that jose verifies, non-ASCII payloads included', async () => {
    const payload = { sub: 'rôle:enrichér/bootstrap:✓', scope: 'read:kv/données/*', n: 1 };
    const token = await signCompactJws(encodeTaskTokenHeader(kid), payload, privateKey);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', kid, typ: TASK_TOKEN_TYP });
    const { payload: bytes } = await compactVerify(token, publicKey, { algorithms: ['EdDSA'] });
    expect(JSON.parse(new TextDecoder().decode(bytes))).toEqual(payload);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/);
  });

  it('splits back into the signed bytes and the 64-byte signature', async () => {
    const token = await signCompactJws(encodeTaskTokenHeader(kid), { a: 1 }, privateKey);
    const parts = splitCompactJws(token)!;
    expect(parts.signature).toHaveLength(64);
    expect(`${parts.signingInput}.${parts.signature.toString('base64url')}`).toBe(token);
    expect(verify(null, Buffer.from(parts.signingInput), publicKey, parts.signature)).toBe(true);
    expect(decodeJsonPart(parts.encodedPayload)).toEqual({ a: 1 });
    expect(decodeJsonPart(parts.encodedHeader)).toEqual({ alg: 'EdDSA', kid, typ: TASK_TOKEN_TYP });
  });

  it('refuses to split anything else', async () => {
    const token = await signCompactJws(encodeTaskTokenHeader(kid), { a: 1 }, privateKey);
    const [h, p, s] = token.split('.') as [string, string, string];
    for (const bad of [
      '',
      '..',
      `${h}.${p}`,
      `${token}.`,
      `${h}.${p}.${s}A`,
      `${h}.${p}.${s.slice(2)}`,
      `${h}.${p}+.${s}`,
    ]) {
      expect(splitCompactJws(bad), bad).toBeUndefined();
    }
    expect(decodeJsonPart(Buffer.from([0xc3, 0x28]).toString('base64url'))).toBeUndefined();
    expect(decodeJsonPart(Buffer.from('{').toString('base64url'))).toBeUndefined();
  });
});
