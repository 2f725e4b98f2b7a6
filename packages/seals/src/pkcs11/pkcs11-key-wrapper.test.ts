import { randomBytes } from 'node:crypto';
import { CustosError } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftHsm, type SoftHsmToken, softHsmAvailable } from '../test-support/softhsm.js';
import type { Pkcs11SealConfig } from './pkcs11-config.js';
import { parsePkcs11SealConfig } from './pkcs11-config.js';
import { Pkcs11KeyWrapper } from './pkcs11-key-wrapper.js';
import { acquirePkcs11Module } from './pkcs11-module.js';

// With CI=true SoftHSM2 must be there (.ci/run installs it): no skipping.
const run = softHsmAvailable() || process.env.CI === 'true';

async function failure(p: Promise<unknown>): Promise<CustosError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CustosError);
  return error as CustosError;
}

describe.runIf(run)('Pkcs11KeyWrapper against SoftHSM2', () => {
  let hsm: SoftHsm;
  let token: SoftHsmToken;
  const env: NodeJS.ProcessEnv = {};
  const aad = Buffer.from('custos.test.aad');

  function config(overrides: Partial<Pkcs11SealConfig> = {}): Pkcs11SealConfig {
    return parsePkcs11SealConfig({
      type: 'pkcs11',
      library: hsm.library,
      token_label: token.label,
      pin_env: 'TEST_HSM_PIN',
      key_label: 'root-wrap',
      ...overrides,
    });
  }

  beforeAll(async () => {
    hsm = await SoftHsm.start();
    token = await hsm.initToken();
    env.TEST_HSM_PIN = token.pin;
    await hsm.createKey(token, 'root-wrap');
    await hsm.createKey(token, 'gcm-only', { usage: 'gcm' });
    await hsm.createKey(token, 'extractable', { extractable: true });
    await hsm.createKey(token, 'not-sensitive', { sensitive: false });
  });
  afterAll(async () => {
    await hsm?.cleanup();
  });

  for (const mechanism of ['aes-gcm', 'aes-key-wrap-pad'] as const) {
    it(`${mechanism}: wraps and unwraps a root key, bound to its AAD`, async () => {
      const wrapper = await Pkcs11KeyWrapper.open(config({ mechanism }), { env });
      try {
        expect(wrapper.describe()).toEqual({ token_label: token.label, key_label: 'root-wrap', mechanism });
        const rootKey = randomBytes(32);
        const blob = await wrapper.wrap(rootKey, aad);
        expect(Buffer.from(blob).includes(rootKey)).toBe(false);
        expect(Buffer.from(await wrapper.unwrap(blob, aad))).toEqual(rootKey);
        // Two wraps of the same key differ (random IV / fresh session object).
        if (mechanism === 'aes-gcm')
          expect(Buffer.from(await wrapper.wrap(rootKey, aad))).not.toEqual(Buffer.from(blob));
        const e1 = await failure(wrapper.unwrap(blob, Buffer.from('other aad')));
        expect(e1.code).toBe('CUSTOS_ERR_INTEGRITY');
        const tampered = Buffer.from(blob);
        tampered[tampered.length - 3]! ^= 1;
        expect((await failure(wrapper.unwrap(tampered, aad))).code).toBe('CUSTOS_ERR_INTEGRITY');
      } finally {
        await wrapper.close();
      }
    });
  }

  it('refuses a blob made with the other mechanism', async () => {
    const gcm = await Pkcs11KeyWrapper.open(config(), { env });
    const kwp = await Pkcs11KeyWrapper.open(config({ mechanism: 'aes-key-wrap-pad' }), { env });
    try {
      const blob = await gcm.wrap(randomBytes(32), aad);
      expect((await failure(kwp.unwrap(blob, aad))).code).toBe('CUSTOS_ERR_INTEGRITY');
    } finally {
      await gcm.close();
      await kwp.close();
    }
  });

  it('finds the token by slot id as well as by label; a slot without a token is CUSTOS_ERR_HSM_TOKEN_NOT_FOUND', async () => {
    const module = acquirePkcs11Module(hsm.library);
    let slotId: number;
    try {
      const slot = module.pkcs11
        .C_GetSlotList(true)
        .find((s) => module.pkcs11.C_GetTokenInfo(s).label.trim() === token.label)!;
      slotId = slot.readUIntLE(0, 6);
    } finally {
      module.release();
    }
    const { token_label: _label, ...bySlot } = config();
    const wrapper = await Pkcs11KeyWrapper.open({ ...bySlot, slot: slotId }, { env });
    try {
      expect(wrapper.describe().token_label).toBe(token.label);
    } finally {
      await wrapper.close();
    }
    const error = await failure(Pkcs11KeyWrapper.open({ ...bySlot, slot: slotId + 1 }, { env }));
    expect(error.code).toBe('CUSTOS_ERR_HSM_TOKEN_NOT_FOUND');
  });

  it('HSM library missing: CUSTOS_ERR_HSM_LIBRARY', async () => {
    const error = await failure(
      Pkcs11KeyWrapper.open(config({ library: '/nonexistent/libpkcs11-missing.so' }), { env }),
    );
    expect(error.code).toBe('CUSTOS_ERR_HSM_LIBRARY');
  });

  it('wrong PIN: CUSTOS_ERR_SEAL_ACCESS_DENIED, and the PIN is nowhere in the error', async () => {
    const wrongPin = `wrong-${randomBytes(6).toString('hex')}`;
    const error = await failure(Pkcs11KeyWrapper.open(config(), { env: { TEST_HSM_PIN: wrongPin } }));
    expect(error.code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
    const everything = JSON.stringify({ message: error.message, detail: error.detail, stack: error.stack });
    expect(everything).not.toContain(wrongPin);
    expect(everything).not.toContain(token.pin);
  });

  it('PIN environment variable unset: CUSTOS_ERR_SEAL_CONFIG_INVALID naming the variable', async () => {
    const error = await failure(Pkcs11KeyWrapper.open(config(), { env: {} }));
    expect(error.code).toBe('CUSTOS_ERR_SEAL_CONFIG_INVALID');
    expect(error.message).toContain('TEST_HSM_PIN');
  });

  it('a PIN written into the seal config is refused, without echoing it', () => {
    const pin = `pin-${randomBytes(6).toString('hex')}`;
    let error: unknown;
    try {
      parsePkcs11SealConfig({ ...config(), pin });
    } catch (e) {
      error = e;
    }
    expect((error as CustosError).code).toBe('CUSTOS_ERR_SEAL_CONFIG_INVALID');
    expect((error as CustosError).message).not.toContain(pin);
  });

  it('token absent: CUSTOS_ERR_HSM_TOKEN_NOT_FOUND', async () => {
    const error = await failure(Pkcs11KeyWrapper.open(config({ token_label: 'no-such-token' }), { env }));
    expect(error.code).toBe('CUSTOS_ERR_HSM_TOKEN_NOT_FOUND');
  });

  it('key absent: CUSTOS_ERR_SEAL_KEY_NOT_FOUND; with createKey a non-extractable key is made and used', async () => {
    const label = `created-${randomBytes(3).toString('hex')}`;
    expect((await failure(Pkcs11KeyWrapper.open(config({ key_label: label }), { env }))).code).toBe(
      'CUSTOS_ERR_SEAL_KEY_NOT_FOUND',
    );
    const created = await Pkcs11KeyWrapper.open(config({ key_label: label }), { env, createKey: true });
    const rootKey = randomBytes(32);
    const blob = await created.wrap(rootKey, aad);
    await created.close();
    // A second open finds it (a token object) and accepts it (non-extractable, sensitive).
    const reopened = await Pkcs11KeyWrapper.open(config({ key_label: label }), { env });
    expect(Buffer.from(await reopened.unwrap(blob, aad))).toEqual(rootKey);
    await reopened.close();
  });

  it('an extractable key or a non-sensitive key is refused: CUSTOS_ERR_SEAL_KEY_INSECURE', async () => {
    for (const key_label of ['extractable', 'not-sensitive']) {
      expect((await failure(Pkcs11KeyWrapper.open(config({ key_label }), { env }))).code).toBe(
        'CUSTOS_ERR_SEAL_KEY_INSECURE',
      );
    }
  });

  it('a key that does not allow the configured mechanism: CUSTOS_ERR_SEAL_MECHANISM_UNSUPPORTED', async () => {
    const error = await failure(
      Pkcs11KeyWrapper.open(config({ key_label: 'gcm-only', mechanism: 'aes-key-wrap-pad' }), { env }),
    );
    expect(error.code).toBe('CUSTOS_ERR_SEAL_MECHANISM_UNSUPPORTED');
  });

  it('token removed while open: the health check fails; once it is back, the same wrapper works again', async () => {
    const wrapper = await Pkcs11KeyWrapper.open(config(), { env });
    try {
      const rootKey = randomBytes(32);
      const blob = await wrapper.wrap(rootKey, aad);
      await wrapper.checkHealth();
      await hsm.removeTokens();
      try {
        const error = await failure(wrapper.checkHealth());
        expect(['CUSTOS_ERR_SEAL_UNAVAILABLE', 'CUSTOS_ERR_HSM_TOKEN_NOT_FOUND']).toContain(error.code);
        expect(JSON.stringify({ m: error.message, s: error.stack })).not.toContain(token.pin);
        await failure(wrapper.unwrap(blob, aad));
      } finally {
        await hsm.restoreTokens();
      }
      await wrapper.checkHealth();
      expect(Buffer.from(await wrapper.unwrap(blob, aad))).toEqual(rootKey);
    } finally {
      await wrapper.close();
    }
  });

  it('PIN changed in the HSM while running: the next login is refused once, and that PIN is never tried again', async () => {
    const own = await hsm.initToken();
    await hsm.createKey(own, 'pin-key');
    const ownEnv = { TEST_HSM_PIN: own.pin };
    const wrapper = await Pkcs11KeyWrapper.open(config({ token_label: own.label, key_label: 'pin-key' }), {
      env: ownEnv,
    });
    const newPin = `pin-${randomBytes(6).toString('hex')}`;
    try {
      await hsm.setPin(own, own.pin, newPin);
      // Force a new login: the token goes away and comes back.
      await hsm.removeTokens();
      await failure(wrapper.checkHealth());
      await hsm.restoreTokens();
      const refused = await failure(wrapper.checkHealth());
      expect(refused.code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
      expect(JSON.stringify({ m: refused.message, s: refused.stack })).not.toContain(own.pin);
      // Even with the old PIN valid again, the wrapper does not log in again with it.
      await hsm.setPin(own, newPin, own.pin);
      expect((await failure(wrapper.checkHealth())).code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
    } finally {
      await wrapper.close();
    }
  });
});
