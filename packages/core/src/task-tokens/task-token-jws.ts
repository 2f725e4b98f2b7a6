import { type KeyObject, sign } from 'node:crypto';
import { TASK_TOKEN_TYP } from './task-token-claims.js';

/*
 * Compact JWS (RFC 7515) by hand, for task tokens only.
 *
 * Why not jose's SignJWT / jwtVerify on the hot path: minting a child task
 * must reach thousands per second on two cores. Our tokens have one fixed
 * header per key, so signing is one JSON.stringify, two base64url encodings
 * and one synchronous Ed25519 signature (about half the cost of SignJWT one
 * at a time, which goes through WebCrypto with generic header and claim
 * processing), and verification checks the header by exact byte comparison,
 * which is also stricter than any allow-list. Figures: docs/task-tokens.md.
 * Downstream services verify with jose as usual; a test proves jose accepts
 * what this file produces.
 */

/** The header of every token signed by `kid`, base64url-encoded once per key. */
export function encodeTaskTokenHeader(kid: string): string {
  return Buffer.from(JSON.stringify({ alg: 'EdDSA', kid, typ: TASK_TOKEN_TYP }), 'utf8').toString('base64url');
}

/**
 * Signs `payload` under an already-encoded header with an Ed25519 key:
 * `header.payload.signature`, each base64url without padding. The signing
 * input is ASCII, so `latin1` encodes it byte for byte.
 *
 * The signature is computed on libuv's thread pool (`crypto.sign` with a
 * callback), not on the event loop: an Ed25519 signature costs about 46 µs
 * of CPU on the 2-core benchmark machine, the largest single cost of minting
 * a task, and the pool runs it on the other core while the event loop serves
 * the next request (measured: 12.7 µs of event-loop time per signature
 * instead of 46).
 */
export function signCompactJws(encodedHeader: string, payload: unknown, privateKey: KeyObject): Promise<string> {
  const signingInput = `${encodedHeader}.${Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url')}`;
  return new Promise((resolve, reject) =>
    sign(null, Buffer.from(signingInput, 'latin1'), privateKey, (error, signature) =>
      error ? reject(error) : resolve(`${signingInput}.${signature.toString('base64url')}`),
    ),
  );
}

/** The three parts of a compact JWS whose encoding is well-formed. */
export interface CompactJwsParts {
  readonly encodedHeader: string;
  readonly encodedPayload: string;
  /** `header.payload`, the bytes the signature covers. */
  readonly signingInput: string;
  /** The decoded Ed25519 signature (64 bytes). */
  readonly signature: Buffer;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const ED25519_SIGNATURE_BYTES = 64;

/**
 * Splits a compact JWS into its parts, or undefined when it is not exactly
 * three non-empty base64url parts with a 64-byte signature in canonical
 * encoding. Node's base64url decoder skips characters it does not know, so
 * the alphabet is checked first; the signature must re-encode to itself so
 * one token has exactly one spelling.
 */
export function splitCompactJws(token: string): CompactJwsParts | undefined {
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (second < 0 || token.indexOf('.', second + 1) >= 0) return undefined;
  const encodedHeader = token.slice(0, first);
  const encodedPayload = token.slice(first + 1, second);
  const encodedSignature = token.slice(second + 1);
  if (!BASE64URL.test(encodedHeader) || !BASE64URL.test(encodedPayload) || !BASE64URL.test(encodedSignature)) {
    return undefined;
  }
  const signature = Buffer.from(encodedSignature, 'base64url');
  if (signature.length !== ED25519_SIGNATURE_BYTES || signature.toString('base64url') !== encodedSignature) {
    return undefined;
  }
  return { encodedHeader, encodedPayload, signingInput: token.slice(0, second), signature };
}

/** Decodes a base64url JSON part; undefined when it is not valid UTF-8 JSON. */
export function decodeJsonPart(part: string): unknown {
  try {
    return JSON.parse(utf8.decode(Buffer.from(part, 'base64url')));
  } catch {
    return undefined;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
