import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { CustosError, type RootKeyWrapper, type RootKeyWrapperHealth } from '@custos/core';
import type * as P from 'pkcs11js';
import pkcs11js from 'pkcs11js';
import { type Pkcs11SealConfig, readPin } from './pkcs11-config.js';
import { pkcs11Failure } from './pkcs11-errors.js';
import { acquirePkcs11Module, type Pkcs11Module } from './pkcs11-module.js';
import { MECHANISMS, openPkcs11Session, type Pkcs11Handles } from './pkcs11-session.js';

/**
 * Blob format: version (1) | mechanism (1 = aes-gcm, 2 = aes-key-wrap-pad) | body.
 * aes-gcm body: a random 12-byte IV, then ciphertext and 16-byte tag.
 * aes-key-wrap-pad body: RFC 5649 wrapping of `rootKey || SHA-256(aad)`.
 */
const BLOB_VERSION = 1;
const MECH_GCM = 1;
const MECH_KWP = 2;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DIGEST_BYTES = 32;
/** PKCS#11 session states of a logged-in user (not exported by pkcs11js). */
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

/** Options of {@link Pkcs11KeyWrapper.open}. */
export interface Pkcs11OpenOptions {
  /** Where `pin_env` is looked up (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Generate the key (non-extractable, sensitive) when no key has the label (`--create-key`). */
  readonly createKey?: boolean;
}

/**
 * The PKCS#11 seal: the root key is wrapped by a non-extractable AES key in
 * an HSM, reached through its PKCS#11 module (tested against SoftHSM2).
 *
 * Mechanisms (config `mechanism`, chosen explicitly, default `aes-gcm`):
 * - `aes-gcm` (CKM_AES_GCM through C_Encrypt/C_Decrypt): an AEAD, so the
 *   token itself authenticates the AAD; the IV is random per wrap and stored
 *   with the blob.
 * - `aes-key-wrap-pad` (CKM_AES_KEY_WRAP_PAD, RFC 5649, through
 *   C_WrapKey/C_UnwrapKey) for tokens that do not offer GCM encryption. Key
 *   wrap has no AAD, so a SHA-256 of the AAD is wrapped with the root key and
 *   compared on unwrap; the wrap's own integrity check authenticates both.
 *
 * The PIN is read from the environment variable the config names, kept in
 * memory only to log in again after the token comes back, and never put in
 * an error or a log.
 *
 * @example
 * ```ts
 * const wrapper = await Pkcs11KeyWrapper.open({
 *   type: 'pkcs11', library: '/usr/lib/softhsm/libsofthsm2.so',
 *   token_label: 'custos', pin_env: 'CUSTOS_HSM_PIN', key_label: 'custos-root',
 * });
 * ```
 */
export class Pkcs11KeyWrapper implements RootKeyWrapper, RootKeyWrapperHealth {
  readonly type = 'pkcs11';
  readonly #module: Pkcs11Module;
  readonly #config: Pkcs11SealConfig;
  readonly #pin: string;
  #handles: Pkcs11Handles | undefined;
  readonly #tokenLabel: string;
  /**
   * Set once the token refused the PIN after start (it was changed, or the
   * token locked it). No further login is attempted with it: a health check
   * retrying every few seconds would otherwise run the token's lockout
   * counter down. A restart with the right PIN is needed.
   */
  #pinRefused: CustosError | undefined;

  private constructor(module: Pkcs11Module, config: Pkcs11SealConfig, pin: string, handles: Pkcs11Handles) {
    this.#module = module;
    this.#config = config;
    this.#pin = pin;
    this.#handles = handles;
    this.#tokenLabel = handles.tokenLabel;
  }

  /** Loads the module, opens a session, logs in and finds (or, asked, creates) the key. See {@link openPkcs11Session} for the errors. */
  static async open(config: Pkcs11SealConfig, options: Pkcs11OpenOptions = {}): Promise<Pkcs11KeyWrapper> {
    const pin = readPin(config, options.env);
    const module = acquirePkcs11Module(config.library);
    try {
      const handles = openPkcs11Session(module, config, pin, { createKey: options.createKey ?? false });
      return new Pkcs11KeyWrapper(module, config, pin, handles);
    } catch (e) {
      module.release();
      throw e;
    }
  }

  /** Token label, key label and mechanism: non-secret, bound into the wrapped blob's AAD. */
  describe(): Readonly<Record<string, string>> {
    return { token_label: this.#tokenLabel, key_label: this.#config.key_label, mechanism: this.#mechanism() };
  }

  async wrap(rootKey: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    return this.#withSession((h) =>
      this.#mechanism() === 'aes-gcm' ? this.#wrapGcm(h, rootKey, aad) : this.#wrapKwp(h, rootKey, aad),
    );
  }

  async unwrap(wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    const blob = Buffer.from(wrapped);
    const expected = this.#mechanism() === 'aes-gcm' ? MECH_GCM : MECH_KWP;
    // A blob made with the other mechanism, or of another format, is refused
    // before it reaches the token: the mechanism is part of the key's identity.
    if (blob.length < 2 || blob[0] !== BLOB_VERSION || blob[1] !== expected)
      throw new CustosError('CUSTOS_ERR_INTEGRITY');
    return this.#withSession((h) =>
      expected === MECH_GCM ? this.#unwrapGcm(h, blob, aad) : this.#unwrapKwp(h, blob, aad),
    );
  }

  /**
   * The session is alive, still logged in, and the key is still there under
   * its label. After a failure it reconnects once (new session, login, find
   * the key) before reporting: a token that came back is used again.
   */
  async checkHealth(): Promise<void> {
    if (this.#handles !== undefined && this.#probe(this.#handles)) return;
    try {
      this.#reconnect();
    } catch (e) {
      throw pkcs11Failure(e);
    }
  }

  async close(): Promise<void> {
    const handles = this.#handles;
    this.#handles = undefined;
    if (handles !== undefined) {
      try {
        this.#module.pkcs11.C_CloseSession(handles.session);
      } catch {
        // Gone with the token.
      }
    }
    this.#module.release();
  }

  #mechanism() {
    return this.#config.mechanism ?? 'aes-gcm';
  }

  #wrapGcm(h: Pkcs11Handles, rootKey: Uint8Array, aad: Uint8Array): Buffer {
    const { pkcs11 } = this.#module;
    const iv = randomBytes(IV_BYTES);
    const input = Buffer.from(rootKey);
    try {
      pkcs11.C_EncryptInit(h.session, gcm(iv, aad), h.key);
      const body = pkcs11.C_Encrypt(h.session, input, Buffer.alloc(rootKey.length + TAG_BYTES + 16));
      return Buffer.concat([Buffer.from([BLOB_VERSION, MECH_GCM]), iv, body]);
    } finally {
      input.fill(0);
    }
  }

  #unwrapGcm(h: Pkcs11Handles, blob: Buffer, aad: Uint8Array): Buffer {
    const { pkcs11 } = this.#module;
    if (blob.length < 2 + IV_BYTES + TAG_BYTES) throw new CustosError('CUSTOS_ERR_INTEGRITY');
    const iv = blob.subarray(2, 2 + IV_BYTES);
    const body = blob.subarray(2 + IV_BYTES);
    // The root key lands in `out`: copied out once, then zeroed.
    const out = Buffer.alloc(body.length);
    try {
      pkcs11.C_DecryptInit(h.session, gcm(iv, aad), h.key);
      return Buffer.from(pkcs11.C_Decrypt(h.session, body, out));
    } finally {
      out.fill(0);
    }
  }

  #wrapKwp(h: Pkcs11Handles, rootKey: Uint8Array, aad: Uint8Array): Buffer {
    const { pkcs11 } = this.#module;
    const plain = Buffer.concat([rootKey, digest(aad)]);
    // C_WrapKey wraps key objects only: the root key becomes a session object
    // (never a token object) for the length of this call, and is destroyed after.
    const temp = pkcs11.C_CreateObject(h.session, secretTemplate(plain));
    plain.fill(0);
    try {
      const body = pkcs11.C_WrapKey(
        h.session,
        { mechanism: MECHANISMS['aes-key-wrap-pad'].id },
        h.key,
        temp,
        Buffer.alloc(rootKey.length + DIGEST_BYTES + 16),
      );
      return Buffer.concat([Buffer.from([BLOB_VERSION, MECH_KWP]), body]);
    } finally {
      pkcs11.C_DestroyObject(h.session, temp);
    }
  }

  #unwrapKwp(h: Pkcs11Handles, blob: Buffer, aad: Uint8Array): Buffer {
    const { pkcs11 } = this.#module;
    const temp = pkcs11.C_UnwrapKey(
      h.session,
      { mechanism: MECHANISMS['aes-key-wrap-pad'].id },
      h.key,
      blob.subarray(2),
      secretTemplate(),
    );
    let plain: Buffer;
    try {
      const value = pkcs11.C_GetAttributeValue(h.session, temp, [{ type: pkcs11js.CKA_VALUE }])[0]!.value as Buffer;
      plain = Buffer.from(value);
      value.fill(0);
    } finally {
      pkcs11.C_DestroyObject(h.session, temp);
    }
    try {
      if (plain.length <= DIGEST_BYTES) throw new CustosError('CUSTOS_ERR_INTEGRITY');
      const bound = plain.subarray(plain.length - DIGEST_BYTES);
      if (!timingSafeEqual(bound, digest(aad))) throw new CustosError('CUSTOS_ERR_INTEGRITY');
      return Buffer.from(plain.subarray(0, plain.length - DIGEST_BYTES));
    } finally {
      plain.fill(0);
    }
  }

  /**
   * Runs `op` on the session. When it fails, the session and key are probed:
   * - still healthy: the failure was the input's (tokens report a bad GCM tag
   *   or a bad key wrap as a general error), so `CUSTOS_ERR_INTEGRITY`;
   * - not healthy: reconnect once and retry, so a token that was removed and
   *   put back is picked up without a restart.
   */
  async #withSession<T>(op: (h: Pkcs11Handles) => T): Promise<T> {
    try {
      if (this.#handles === undefined) this.#reconnect();
      return op(this.#handles!);
    } catch (e) {
      const failure = pkcs11Failure(e);
      if (failure.code === 'CUSTOS_ERR_INTEGRITY' || failure.code === 'CUSTOS_ERR_SEAL_ACCESS_DENIED') throw failure;
      if (this.#handles !== undefined && this.#probe(this.#handles)) throw new CustosError('CUSTOS_ERR_INTEGRITY');
      try {
        this.#reconnect();
        return op(this.#handles!);
      } catch (again) {
        const second = pkcs11Failure(again);
        if (second.code !== 'CUSTOS_ERR_SEAL_UNAVAILABLE' || this.#handles === undefined) throw second;
        throw this.#probe(this.#handles) ? new CustosError('CUSTOS_ERR_INTEGRITY') : second;
      }
    }
  }

  /** True when the session is logged in and the key handle still answers. */
  #probe(h: Pkcs11Handles): boolean {
    const { pkcs11 } = this.#module;
    try {
      const info = pkcs11.C_GetSessionInfo(h.session);
      if (info.state !== CKS_RW_USER_FUNCTIONS && info.state !== CKS_RO_USER_FUNCTIONS) return false;
      pkcs11.C_GetAttributeValue(h.session, h.key, [{ type: pkcs11js.CKA_KEY_TYPE }]);
      return true;
    } catch {
      return false;
    }
  }

  #reconnect(): void {
    if (this.#pinRefused !== undefined) throw this.#pinRefused;
    const old = this.#handles;
    this.#handles = undefined;
    if (old !== undefined) {
      try {
        this.#module.pkcs11.C_CloseSession(old.session);
      } catch {
        // Gone with the token.
      }
    }
    try {
      this.#handles = openPkcs11Session(this.#module, this.#config, this.#pin);
    } catch (e) {
      // Some modules only see a token that came back after a fresh
      // C_Initialize. A wrong PIN is not retried (it would count twice
      // against the token's lockout).
      if (e instanceof CustosError && e.code === 'CUSTOS_ERR_SEAL_ACCESS_DENIED') {
        this.#pinRefused = e;
        throw e;
      }
      this.#module.reinitialize();
      try {
        this.#handles = openPkcs11Session(this.#module, this.#config, this.#pin);
      } catch (again) {
        if (again instanceof CustosError && again.code === 'CUSTOS_ERR_SEAL_ACCESS_DENIED') this.#pinRefused = again;
        throw again;
      }
    }
    if (this.#handles.tokenLabel !== this.#tokenLabel) {
      // Another token answered to the same slot id: not the key we described.
      throw new CustosError('CUSTOS_ERR_HSM_TOKEN_NOT_FOUND', 'The token in the slot changed.');
    }
  }
}

function gcm(iv: Buffer, aad: Uint8Array): P.Mechanism {
  const parameter: P.GcmParams = {
    type: pkcs11js.CK_PARAMS_GCM,
    iv,
    ivBits: IV_BYTES * 8,
    aad: Buffer.from(aad),
    tagBits: TAG_BYTES * 8,
  };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
}

function digest(aad: Uint8Array): Buffer {
  return createHash('sha256').update('custos.pkcs11.kwp.aad.v1\0').update(aad).digest();
}

/** A session-only, extractable generic secret: the carrier of the root key in and out of C_WrapKey/C_UnwrapKey. */
function secretTemplate(value?: Buffer): P.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_TOKEN, value: false },
    { type: pkcs11js.CKA_EXTRACTABLE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: false },
    ...(value !== undefined ? [{ type: pkcs11js.CKA_VALUE, value }] : []),
  ];
}
