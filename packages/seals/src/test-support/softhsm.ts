import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pkcs11js from 'pkcs11js';
import { acquirePkcs11Module } from '../pkcs11/pkcs11-module.js';

const run = promisify(execFile);

/** Where Debian's softhsm2 puts the module and the tool. */
export const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';
export const SOFTHSM_UTIL = '/usr/bin/softhsm2-util';

/** True when SoftHSM2 is installed (with CI=true a test must not skip on its absence: .ci/run installs it). */
export function softHsmAvailable(): boolean {
  return existsSync(SOFTHSM_LIBRARY) && existsSync(SOFTHSM_UTIL);
}

/** An initialised token: its label and its test-time PINs (obviously fake, never reused). */
export interface SoftHsmToken {
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
}

/** Attributes of a test key; the defaults are what custos requires (non-extractable, sensitive). */
export interface TestKeyOptions {
  readonly extractable?: boolean;
  readonly sensitive?: boolean;
  /** Which usages the key allows (default: both mechanisms' usages). */
  readonly usage?: 'gcm' | 'kwp' | 'both';
}

/**
 * A SoftHSM2 instance private to one test file: a temporary token directory
 * and a softhsm2.conf naming it, exported as SOFTHSM2_CONF before the module
 * is first initialised in this process (SoftHSM reads it at C_Initialize).
 * Tokens are initialised with softhsm2-util, keys created through pkcs11js.
 */
export class SoftHsm {
  readonly dir: string;
  readonly tokenDir: string;
  readonly conf: string;
  readonly library = SOFTHSM_LIBRARY;

  private constructor(dir: string) {
    this.dir = dir;
    this.tokenDir = join(dir, 'tokens');
    this.conf = join(dir, 'softhsm2.conf');
  }

  static async start(): Promise<SoftHsm> {
    const hsm = new SoftHsm(await mkdtemp(join(tmpdir(), 'custos-softhsm-')));
    await mkdir(hsm.tokenDir, { mode: 0o700 });
    await writeFile(
      hsm.conf,
      `directories.tokendir = ${hsm.tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
    );
    process.env.SOFTHSM2_CONF = hsm.conf;
    return hsm;
  }

  /** The environment a child process (a custos server) needs to see this SoftHSM, plus `extra`. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...process.env, SOFTHSM2_CONF: this.conf, ...extra };
  }

  /** Initialises a token in a free slot with fresh random PINs. */
  async initToken(label = `t-${randomBytes(4).toString('hex')}`): Promise<SoftHsmToken> {
    const pin = `pin-${randomBytes(6).toString('hex')}`;
    const soPin = `so-${randomBytes(6).toString('hex')}`;
    await run(SOFTHSM_UTIL, ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], {
      env: this.env(),
    });
    return { label, pin, soPin };
  }

  /** Creates an AES-256 token key labelled `keyLabel` on `token` (for tests of good and refused keys). */
  async createKey(token: SoftHsmToken, keyLabel: string, options: TestKeyOptions = {}): Promise<void> {
    const module = acquirePkcs11Module(this.library);
    const { pkcs11 } = module;
    try {
      const slot = pkcs11.C_GetSlotList(true).find((s) => pkcs11.C_GetTokenInfo(s).label.trim() === token.label);
      if (slot === undefined) throw new Error(`no token ${token.label}`);
      const session = pkcs11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      try {
        try {
          pkcs11.C_Login(session, pkcs11js.CKU_USER, token.pin);
        } catch (e) {
          if (!(e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN)) throw e;
        }
        const usage = options.usage ?? 'both';
        pkcs11.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN, parameter: undefined }, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
          { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
          { type: pkcs11js.CKA_LABEL, value: keyLabel },
          { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: options.extractable ?? false },
          { type: pkcs11js.CKA_SENSITIVE, value: options.sensitive ?? true },
          { type: pkcs11js.CKA_ENCRYPT, value: usage !== 'kwp' },
          { type: pkcs11js.CKA_DECRYPT, value: usage !== 'kwp' },
          { type: pkcs11js.CKA_WRAP, value: usage !== 'gcm' },
          { type: pkcs11js.CKA_UNWRAP, value: usage !== 'gcm' },
        ]);
      } finally {
        pkcs11.C_CloseSession(session);
      }
    } finally {
      module.release();
    }
  }

  /** Changes the user PIN of `token` from `from` to `to` (as an HSM admin changing it under a running server). */
  async setPin(token: SoftHsmToken, from: string, to: string): Promise<void> {
    const module = acquirePkcs11Module(this.library);
    const { pkcs11 } = module;
    try {
      const slot = pkcs11.C_GetSlotList(true).find((s) => pkcs11.C_GetTokenInfo(s).label.trim() === token.label);
      if (slot === undefined) throw new Error(`no token ${token.label}`);
      const session = pkcs11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      try {
        try {
          pkcs11.C_Login(session, pkcs11js.CKU_USER, from);
        } catch (e) {
          if (!(e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN)) throw e;
        }
        pkcs11.C_SetPIN(session, from, to);
      } finally {
        pkcs11.C_CloseSession(session);
      }
    } finally {
      module.release();
    }
  }

  /** Simulates pulling the HSM: every token disappears (the token directory moves away). */
  async removeTokens(): Promise<void> {
    await rename(this.tokenDir, `${this.tokenDir}.removed`);
    await mkdir(this.tokenDir, { mode: 0o700 });
  }

  /** Puts the tokens back where they were. */
  async restoreTokens(): Promise<void> {
    await rm(this.tokenDir, { recursive: true, force: true });
    await rename(`${this.tokenDir}.removed`, this.tokenDir);
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
