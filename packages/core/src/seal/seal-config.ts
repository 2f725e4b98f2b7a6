import { randomBytes } from 'node:crypto';
import type { KeyringBinding } from '../barrier/keyring-store.js';
import { IntegrityError } from '../errors/index.js';

/** Where the seal configuration lives; its presence is the "initialised" marker. */
export const SEAL_CONFIG_NAMESPACE = 'sys';
export const SEAL_CONFIG_KEY = 'seal-config';

/**
 * The kinds of seal custos has. `wrapped` is the auto-unseal family: the root
 * key is stored encrypted by a key that never leaves a root of trust (an HSM
 * over PKCS#11, a cloud KMS); `wrapper` names which one.
 */
export type SealType = 'dev' | 'shamir' | 'wrapped';

/** A wrapper type as written in the server config (`pkcs11`, `awskms`, `azurekeyvault`). */
const WRAPPER_TYPE = /^[a-z0-9][a-z0-9-]{0,31}$/;

/**
 * The stored seal configuration. It is not secret and is stored in plain
 * text, which means an attacker with write access to storage can edit it.
 * That gains nothing:
 * - its canonical form is bound into the AAD of every keyring record, so any
 *   edit (threshold, share count, type, keyring id) makes the next unseal
 *   fail closed instead of being trusted;
 * - the root key is always verified by decrypting the keyring, so no
 *   configuration can make a wrong key (e.g. from fewer shares than the real
 *   threshold) be accepted;
 * - shares and keys are never written back, so there is nothing to make
 *   custos reveal. The worst an edit does is deny service, which write access
 *   to storage allows anyway.
 */
export interface SealConfig {
  readonly version: 1;
  readonly type: SealType;
  /** Random id of the keyring this seal's root key opens. */
  readonly keyringId: string;
  /** Shamir only: shares issued at initialisation. */
  readonly shares?: number;
  /** Shamir only: shares needed to unseal. */
  readonly threshold?: number;
  /**
   * Wrapped only: the wrapper type (`pkcs11`, `awskms`, …). Bound into the
   * keyring's AAD with the rest, so storage cannot be edited into claiming
   * another root of trust.
   */
  readonly wrapper?: string;
}

/** Bounds of the Shamir library (GF(256): at most 255 shares, at least 2). */
export const MIN_SHARES = 2;
export const MAX_SHARES = 255;

/** A fresh configuration with a new random keyring id. */
export function newSealConfig(type: SealType, shamir?: { shares: number; threshold: number }): SealConfig {
  const keyringId = randomBytes(16).toString('hex');
  return type === 'shamir' && shamir
    ? { version: 1, type, keyringId, shares: shamir.shares, threshold: shamir.threshold }
    : { version: 1, type, keyringId };
}

/** A fresh `wrapped` configuration for the wrapper type `wrapper`, with a new random keyring id. */
export function newWrappedSealConfig(wrapper: string): SealConfig {
  if (!WRAPPER_TYPE.test(wrapper)) throw new RangeError('invalid wrapper type');
  return { version: 1, type: 'wrapped', keyringId: randomBytes(16).toString('hex'), wrapper };
}

/** Canonical bytes: fixed field order, so the same configuration always serialises the same. */
export function serializeSealConfig(config: SealConfig): string {
  if (config.type === 'wrapped') {
    return JSON.stringify({
      version: config.version,
      type: config.type,
      keyringId: config.keyringId,
      wrapper: config.wrapper,
    });
  }
  return config.type === 'shamir'
    ? JSON.stringify({
        version: config.version,
        type: config.type,
        keyringId: config.keyringId,
        shares: config.shares,
        threshold: config.threshold,
      })
    : JSON.stringify({ version: config.version, type: config.type, keyringId: config.keyringId });
}

/**
 * Parses a stored configuration. Storage is untrusted, so anything that is
 * not exactly a configuration this version writes is an {@link IntegrityError}
 * (fail closed) rather than a best-effort guess.
 */
export function parseSealConfig(bytes: Uint8Array): SealConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new IntegrityError();
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new IntegrityError();
  const o = raw as Record<string, unknown>;
  if (o.version !== 1 || typeof o.keyringId !== 'string' || !/^[0-9a-f]{32}$/.test(o.keyringId)) {
    throw new IntegrityError();
  }
  let config: SealConfig;
  if (o.type === 'dev') {
    config = { version: 1, type: 'dev', keyringId: o.keyringId };
  } else if (o.type === 'shamir' && validShamir(o.shares, o.threshold)) {
    const shamir = { shares: o.shares as number, threshold: o.threshold as number };
    config = { version: 1, type: 'shamir', keyringId: o.keyringId, ...shamir };
  } else if (o.type === 'wrapped' && typeof o.wrapper === 'string' && WRAPPER_TYPE.test(o.wrapper)) {
    config = { version: 1, type: 'wrapped', keyringId: o.keyringId, wrapper: o.wrapper };
  } else {
    throw new IntegrityError();
  }
  // Unknown extra fields are refused too: the canonical form must round-trip.
  if (serializeSealConfig(config) !== JSON.stringify(o)) throw new IntegrityError();
  return config;
}

/** True for a share count and threshold the Shamir seal accepts. */
export function validShamir(shares: unknown, threshold: unknown): boolean {
  return (
    Number.isInteger(shares) &&
    Number.isInteger(threshold) &&
    (threshold as number) >= MIN_SHARES &&
    (threshold as number) <= (shares as number) &&
    (shares as number) <= MAX_SHARES
  );
}

/** The keyring binding the configuration implies (see {@link KeyringBinding.context}). */
export function keyringBinding(config: SealConfig): KeyringBinding {
  return { keyringId: config.keyringId, context: serializeSealConfig(config) };
}
