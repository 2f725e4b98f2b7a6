import { randomBytes } from 'node:crypto';
import { CustosError } from '@custos/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { azureTestDeps, useAzureEnvironment } from '../test-support/azure-env.js';
import { type AzureTokenServer, startAzureTokenServer } from '../test-support/azure-token-server.js';
import { type KeyVaultWireServer, startKeyVaultWireServer } from '../test-support/key-vault-wire-server.js';
import { createTestTls, type TestTls } from '../test-support/test-tls.js';
import { AzureKeyVaultKeyWrapper } from './azure-key-vault-key-wrapper.js';
import { parseAzureKeyVaultSealConfig } from './azure-key-vault-seal-config.js';
import { decodeEnvelope, encodeEnvelope } from './key-vault-envelope.js';

// Verified against wire-compatible local servers (a Key Vault keys API and
// an Entra ID token endpoint, both over TLS with a throwaway CA) — not
// against Azure itself.
let tls: TestTls;
let tokens: AzureTokenServer;
let vault: KeyVaultWireServer;
let restoreEnv: () => void;
let version: string;
const wrappers: AzureKeyVaultKeyWrapper[] = [];
const aad = Buffer.from('{"keyringId":"0123456789abcdef0123456789abcdef","type":"azurekeyvault"}');

function wrapper(
  options: { keyName?: string; keyVersion?: string; maxRetries?: number; totalTimeoutMs?: number } = {},
) {
  const w = new AzureKeyVaultKeyWrapper(
    {
      vaultUrl: vault.vaultUrl,
      keyName: options.keyName ?? 'custos-root',
      ...(options.keyVersion ? { keyVersion: options.keyVersion } : {}),
    },
    {
      ...azureTestDeps(tls),
      limits: {
        maxRetries: options.maxRetries ?? 2,
        attemptTimeoutMs: 1_000,
        totalTimeoutMs: options.totalTimeoutMs ?? 10_000,
      },
    },
  );
  wrappers.push(w);
  return w;
}

async function failure(p: Promise<unknown>): Promise<CustosError> {
  const e = await p.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(e).toBeInstanceOf(CustosError);
  return e as CustosError;
}

function expectNoSecrets(e: CustosError, rootKey: Uint8Array) {
  const shown = [e.message, JSON.stringify(e), String(e.stack), String(e.cause ?? '')].join('\n');
  expect(shown).not.toContain(tokens.clientSecret);
  expect(shown).not.toContain(tokens.clientId);
  expect(shown).not.toContain(tokens.tenantId);
  expect(shown).not.toContain(Buffer.from(rootKey).toString('hex'));
  expect(shown).not.toContain(Buffer.from(rootKey).toString('base64'));
  expect(e.cause).toBeUndefined();
}

beforeAll(async () => {
  tls = createTestTls();
  tokens = await startAzureTokenServer(tls);
  vault = await startKeyVaultWireServer(tls, tokens);
  version = vault.createKey('custos-root');
  restoreEnv = useAzureEnvironment(tokens, tokens);
});

afterEach(async () => {
  Object.assign(vault.faults, { throttle: 0, retryAfterSeconds: 1, delayMs: 0, deny: false });
  vault.faults.disabled.clear();
  vault.requests.length = 0;
  for (const w of wrappers.splice(0)) await w.close();
});

afterAll(async () => {
  restoreEnv();
  await vault.close();
  await tokens.close();
  tls.dispose();
});

describe('AzureKeyVaultKeyWrapper against the wire-compatible Key Vault server', () => {
  it('wraps and unwraps through the bearer challenge, with a token from DefaultAzureCredential', async () => {
    const rootKey = randomBytes(32);
    const w = wrapper();
    const before = tokens.tokenRequests;
    const wrapped = await w.wrap(rootKey, aad);
    expect(Buffer.from(wrapped).includes(rootKey)).toBe(false);
    expect(decodeEnvelope(wrapped).kid).toBe(`${vault.vaultUrl}/keys/custos-root/${version}`);
    expect(Buffer.from(await w.unwrap(wrapped, aad))).toEqual(rootKey);
    expect(tokens.tokenRequests).toBeGreaterThan(before);
    // The first request of each client went out without a token and got the 401 challenge.
    expect(vault.requests.filter((r) => r === 'POST wrapkey').length).toBeGreaterThanOrEqual(1);
    expect(w.describe()).toEqual({ type: 'azurekeyvault', vault_url: vault.vaultUrl, key_name: 'custos-root' });
  });

  it('binds the AAD through the envelope: another AAD or an edited blob fails closed', async () => {
    const rootKey = randomBytes(32);
    const wrapped = await wrapper().wrap(rootKey, aad);
    expect((await failure(wrapper().unwrap(wrapped, Buffer.from('{"other":1}')))).code).toBe('CUSTOS_ERR_INTEGRITY');
    const flipped = Buffer.from(wrapped);
    flipped[flipped.length - 1]! ^= 1;
    expect((await failure(wrapper().unwrap(flipped, aad))).code).toBe('CUSTOS_ERR_INTEGRITY');
    expect((await failure(wrapper().unwrap(Buffer.from([1, 0]), aad))).code).toBe('CUSTOS_ERR_INTEGRITY');
  });

  it('unwraps with the version that wrapped after the key is rotated, and honours a pinned version', async () => {
    const rootKey = randomBytes(32);
    const wrapped = await wrapper().wrap(rootKey, aad);
    const next = vault.createKey('custos-root');
    expect(Buffer.from(await wrapper().unwrap(wrapped, aad))).toEqual(rootKey);
    const pinned = await wrapper({ keyVersion: next }).wrap(rootKey, aad);
    expect(decodeEnvelope(pinned).kid.endsWith(next)).toBe(true);
    expect((await failure(wrapper({ keyVersion: next }).unwrap(wrapped, aad))).code).toBe('CUSTOS_ERR_INTEGRITY');
  });

  it('refuses a stored key id that points at another host or key before sending anything', async () => {
    const wrapped = decodeEnvelope(await wrapper().wrap(randomBytes(32), aad));
    vault.requests.length = 0;
    for (const kid of [
      `https://attacker.example/keys/custos-root/${version}`,
      `${vault.vaultUrl}/keys/other-key/${version}`,
      `${vault.vaultUrl}/keys/custos-root/${version}?x=1`,
    ]) {
      const edited = encodeEnvelope({ ...wrapped, kid });
      expect((await failure(wrapper().unwrap(edited, aad))).code).toBe('CUSTOS_ERR_INTEGRITY');
    }
    expect(vault.requests).toHaveLength(0);
  });

  it('retries 429 Throttled (honouring Retry-After) and succeeds when the vault recovers', async () => {
    const rootKey = randomBytes(32);
    const w = wrapper({ maxRetries: 3 });
    const wrapped = await w.wrap(rootKey, aad);
    await w.unwrap(wrapped, aad); // the client for the versioned key id has fetched its key
    vault.requests.length = 0;
    vault.faults.throttle = 2;
    expect(Buffer.from(await w.unwrap(wrapped, aad))).toEqual(rootKey);
    expect(vault.requests.filter((r) => r === 'POST unwrapkey')).toHaveLength(3);
  });

  it('gives up on endless throttling after the bounded retries: CUSTOS_ERR_SEAL_UNAVAILABLE', async () => {
    const rootKey = randomBytes(32);
    const w = wrapper({ maxRetries: 1 });
    const wrapped = await w.wrap(rootKey, aad);
    await w.unwrap(wrapped, aad);
    vault.requests.length = 0;
    vault.faults.throttle = Number.POSITIVE_INFINITY;
    const e = await failure(w.unwrap(wrapped, aad));
    expect(e.code).toBe('CUSTOS_ERR_SEAL_UNAVAILABLE');
    expect(e.message).toContain('429');
    expect(vault.requests.filter((r) => r === 'POST unwrapkey')).toHaveLength(2);
    expectNoSecrets(e, rootKey);
  });

  it('bounds a vault that does not answer: CUSTOS_ERR_SEAL_UNAVAILABLE, not a hang', async () => {
    const rootKey = randomBytes(32);
    const w = wrapper({ maxRetries: 1, totalTimeoutMs: 2_000 });
    const wrapped = await w.wrap(rootKey, aad);
    vault.faults.delayMs = 15_000;
    const started = Date.now();
    const e = await failure(w.unwrap(wrapped, aad));
    expect(e.code).toBe('CUSTOS_ERR_SEAL_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(6_000);
    expectNoSecrets(e, rootKey);
  });

  it('says 403 Forbidden and a disabled key with CUSTOS_ERR_SEAL_ACCESS_DENIED, a missing key with CUSTOS_ERR_SEAL_KEY_NOT_FOUND', async () => {
    const rootKey = randomBytes(32);
    const w = wrapper();
    const wrapped = await w.wrap(rootKey, aad);
    vault.faults.deny = true;
    const e = await failure(w.unwrap(wrapped, aad));
    expect(e.code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
    expect(e.message).toContain('403');
    expectNoSecrets(e, rootKey);
    vault.faults.deny = false;
    vault.faults.disabled.add('custos-root');
    expect((await failure(wrapper().unwrap(wrapped, aad))).code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
    expect((await failure(wrapper({ keyName: 'no-such-key' }).wrap(rootKey, aad))).code).toBe(
      'CUSTOS_ERR_SEAL_KEY_NOT_FOUND',
    );
  });

  it('says a refused client secret with CUSTOS_ERR_SEAL_ACCESS_DENIED, without the secret', async () => {
    const rootKey = randomBytes(32);
    const wrongSecret = `wrong-${randomBytes(12).toString('hex')}`;
    const restore = useAzureEnvironment(tokens, { clientId: tokens.clientId, clientSecret: wrongSecret });
    try {
      const e = await failure(wrapper().wrap(rootKey, aad));
      expect(e.code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
      expect(e.message).not.toContain(wrongSecret);
      expectNoSecrets(e, rootKey);
    } finally {
      restore();
    }
  });

  it('says when DefaultAzureCredential finds no credentials: CUSTOS_ERR_SEAL_KMS_NO_CREDENTIALS', async () => {
    const restore = useAzureEnvironment(tokens);
    try {
      const e = await failure(wrapper().wrap(randomBytes(32), aad));
      expect(e.code).toBe('CUSTOS_ERR_SEAL_KMS_NO_CREDENTIALS');
    } finally {
      restore();
    }
  });

  it('checks its health by unwrapping a probe: passes while the key works, says why once it does not', async () => {
    const w = wrapper();
    await w.checkHealth();
    vault.requests.length = 0;
    await w.checkHealth();
    expect(vault.requests).toEqual(['POST unwrapkey']);
    vault.faults.disabled.add('custos-root');
    expect((await failure(w.checkHealth())).code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
    vault.faults.disabled.clear();
    await w.checkHealth();
  });

  it('challenges an unauthenticated request as Key Vault does', async () => {
    const res = await new Promise<{ status: number; challenge: string }>((resolve, reject) => {
      import('node:https').then(({ request }) => {
        const req = request(
          `${vault.vaultUrl}/keys/custos-root/${version}/unwrapkey?api-version=7.6`,
          { method: 'POST', ca: tls.ca },
          (r) => {
            r.resume();
            resolve({ status: r.statusCode ?? 0, challenge: String(r.headers['www-authenticate']) });
          },
        );
        req.on('error', reject);
        req.end('{}');
      }, reject);
    });
    expect(res.status).toBe(401);
    expect(res.challenge).toBe(
      `Bearer authorization="${tokens.authorityHost}/${tokens.tenantId}", resource="https://vault.azure.net"`,
    );
  });
});

describe('parseAzureKeyVaultSealConfig', () => {
  const base = { type: 'azurekeyvault', vault_url: 'https://custos-prod.vault.azure.net/', key_name: 'custos-root' };
  it('reads vault_url (as its origin), key_name and key_version', () => {
    expect(parseAzureKeyVaultSealConfig({ ...base, key_version: 'a'.repeat(32) })).toEqual({
      vaultUrl: 'https://custos-prod.vault.azure.net',
      keyName: 'custos-root',
      keyVersion: 'a'.repeat(32),
    });
  });
  it('refuses credentials in the config without echoing them', () => {
    const secret = `test-${randomBytes(8).toString('hex')}`;
    for (const k of ['client_secret', 'client_id', 'tenant_id']) {
      expect(() => parseAzureKeyVaultSealConfig({ ...base, [k]: secret })).toThrow(
        expect.objectContaining({
          code: 'CUSTOS_ERR_SEAL_CONFIG_INVALID',
          message: expect.not.stringContaining(secret),
        }),
      );
    }
  });
  it('refuses http, paths, bad names and versions', () => {
    for (const bad of [
      { ...base, vault_url: 'http://custos-prod.vault.azure.net' },
      { ...base, vault_url: 'https://custos-prod.vault.azure.net/keys' },
      { ...base, key_name: 'bad name' },
      { ...base, key_version: 'latest' },
    ]) {
      expect(() => parseAzureKeyVaultSealConfig(bad)).toThrow(
        expect.objectContaining({ code: 'CUSTOS_ERR_SEAL_CONFIG_INVALID' }),
      );
    }
  });
});
