import { randomBytes } from 'node:crypto';
import { CustosError } from '@custos/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useAwsEnvironment } from '../test-support/aws-env.js';
import { type KmsWireServer, startKmsWireServer } from '../test-support/kms-wire-server.js';
import { AwsKmsKeyWrapper } from './aws-kms-key-wrapper.js';
import { parseAwsKmsSealConfig } from './aws-kms-seal-config.js';

// Verified against a wire-compatible local server (kms-wire-server.ts),
// which checks AWS Signature V4 on every request — not against AWS itself.
let kms: KmsWireServer;
let key: { id: string; arn: string };
let restoreEnv: () => void;
const wrappers: AwsKmsKeyWrapper[] = [];
const aad = Buffer.from('{"keyringId":"0123456789abcdef0123456789abcdef","type":"awskms"}');

function wrapper(options: { keyId?: string; cluster?: string; maxAttempts?: number; totalTimeoutMs?: number } = {}) {
  const w = new AwsKmsKeyWrapper(
    {
      keyId: options.keyId ?? key.arn,
      region: kms.region,
      endpoint: kms.endpoint,
      ...(options.cluster ? { cluster: options.cluster } : {}),
    },
    {
      maxAttempts: options.maxAttempts ?? 3,
      attemptTimeoutMs: 500,
      totalTimeoutMs: options.totalTimeoutMs ?? 8_000,
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

/** Nothing secret in what an operator or a log would see of the error. */
function expectNoSecrets(e: CustosError, rootKey: Uint8Array) {
  const shown = [e.message, JSON.stringify(e), String(e.stack), String(e.cause ?? '')].join('\n');
  expect(shown).not.toContain(kms.credentials.secretAccessKey);
  expect(shown).not.toContain(kms.credentials.accessKeyId);
  expect(shown).not.toContain(Buffer.from(rootKey).toString('hex'));
  expect(shown).not.toContain(Buffer.from(rootKey).toString('base64'));
  expect(e.cause).toBeUndefined();
}

beforeAll(async () => {
  kms = await startKmsWireServer();
  key = kms.createKey();
  restoreEnv = useAwsEnvironment(kms.credentials);
});

afterEach(async () => {
  kms.faults.throttle = 0;
  kms.faults.delayMs = 0;
  kms.faults.deny = false;
  kms.faults.disabled.clear();
  kms.requests.length = 0;
  for (const w of wrappers.splice(0)) await w.close();
});

afterAll(async () => {
  restoreEnv();
  await kms.close();
});

describe('AwsKmsKeyWrapper against the wire-compatible KMS server', () => {
  it('wraps and unwraps the root key with Encrypt/Decrypt, signed with the default chain’s credentials', async () => {
    const rootKey = randomBytes(32);
    const w = wrapper();
    const wrapped = await w.wrap(rootKey, aad);
    expect(Buffer.from(wrapped).includes(rootKey)).toBe(false);
    expect(Buffer.from(await w.unwrap(wrapped, aad))).toEqual(rootKey);
    expect(kms.requests).toEqual(['TrentService.Encrypt', 'TrentService.Decrypt']);
    expect(w.describe()).toEqual({ type: 'awskms', key_id: key.arn, region: kms.region });
  });

  it('refuses another AAD or another cluster name: both are in the encryption context', async () => {
    const rootKey = randomBytes(32);
    const wrapped = await wrapper().wrap(rootKey, aad);
    expect((await failure(wrapper().unwrap(wrapped, Buffer.from('{"other":1}')))).code).toBe('CUSTOS_ERR_INTEGRITY');
    expect((await failure(wrapper({ cluster: 'staging' }).unwrap(wrapped, aad))).code).toBe('CUSTOS_ERR_INTEGRITY');
  });

  it('pins Decrypt to the configured key: a blob written under another key is refused', async () => {
    const other = kms.createKey();
    const wrapped = await wrapper({ keyId: other.id }).wrap(randomBytes(32), aad);
    expect((await failure(wrapper().unwrap(wrapped, aad))).code).toBe('CUSTOS_ERR_INTEGRITY');
    const tampered = Buffer.from(await wrapper().wrap(randomBytes(32), aad));
    tampered[tampered.length - 1]! ^= 1;
    expect((await failure(wrapper().unwrap(tampered, aad))).code).toBe('CUSTOS_ERR_INTEGRITY');
  });

  it('retries throttling with backoff and succeeds when KMS recovers', async () => {
    const rootKey = randomBytes(32);
    const w = wrapper({ maxAttempts: 4 });
    const wrapped = await w.wrap(rootKey, aad);
    kms.requests.length = 0;
    kms.faults.throttle = 2;
    expect(Buffer.from(await w.unwrap(wrapped, aad))).toEqual(rootKey);
    expect(kms.requests).toEqual(['TrentService.Decrypt', 'TrentService.Decrypt', 'TrentService.Decrypt']);
  });

  it('gives up on endless throttling after the bounded attempts: CUSTOS_ERR_SEAL_UNAVAILABLE', async () => {
    const rootKey = randomBytes(32);
    const w = wrapper({ maxAttempts: 3 });
    const wrapped = await w.wrap(rootKey, aad);
    kms.requests.length = 0;
    kms.faults.throttle = Number.POSITIVE_INFINITY;
    const e = await failure(w.unwrap(wrapped, aad));
    expect(e.code).toBe('CUSTOS_ERR_SEAL_UNAVAILABLE');
    expect(e.message).toContain('ThrottlingException');
    expect(kms.requests).toHaveLength(3);
    expectNoSecrets(e, rootKey);
  });

  it('bounds a KMS that does not answer: CUSTOS_ERR_SEAL_UNAVAILABLE, not a hang', async () => {
    const rootKey = randomBytes(32);
    const w = wrapper({ maxAttempts: 2, totalTimeoutMs: 1_500 });
    const wrapped = await w.wrap(rootKey, aad);
    kms.faults.delayMs = 10_000;
    const started = Date.now();
    const e = await failure(w.unwrap(wrapped, aad));
    expect(e.code).toBe('CUSTOS_ERR_SEAL_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(5_000);
    expectNoSecrets(e, rootKey);
  });

  it('says access denied and disabled keys with CUSTOS_ERR_SEAL_ACCESS_DENIED, without retrying', async () => {
    const rootKey = randomBytes(32);
    const w = wrapper();
    const wrapped = await w.wrap(rootKey, aad);
    kms.requests.length = 0;
    kms.faults.deny = true;
    const denied = await failure(w.unwrap(wrapped, aad));
    expect(denied.code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
    expect(denied.message).toContain('AccessDeniedException');
    expect(denied.message).not.toContain('arn:aws:iam');
    expect(kms.requests).toHaveLength(1);
    expectNoSecrets(denied, rootKey);
    kms.faults.deny = false;
    kms.faults.disabled.add(key.id);
    expect((await failure(w.unwrap(wrapped, aad))).code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
  });

  it('refuses a request signed with the wrong secret (the server verifies SigV4), naming no credential', async () => {
    const rootKey = randomBytes(32);
    const wrapped = await wrapper().wrap(rootKey, aad);
    const restore = useAwsEnvironment({
      ...kms.credentials,
      secretAccessKey: `wrong-${randomBytes(12).toString('hex')}`,
    });
    try {
      const e = await failure(wrapper().unwrap(wrapped, aad));
      expect(e.code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
      expect(e.message).toContain('InvalidSignatureException');
      expectNoSecrets(e, rootKey);
      expect(e.message).not.toContain(process.env.AWS_SECRET_ACCESS_KEY);
    } finally {
      restore();
    }
    // An access key id the wire server never issued, made now (the AKIA shape, obviously a test value).
    const unknownKeyId = `AKIATEST${randomBytes(6).toString('hex').toUpperCase()}`;
    const unknown = useAwsEnvironment({
      accessKeyId: unknownKeyId,
      secretAccessKey: `test-${randomBytes(8).toString('hex')}`,
    });
    try {
      const e = await failure(wrapper().unwrap(wrapped, aad));
      expect(e.code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
      expect(e.message).toContain('UnrecognizedClientException');
      expect(e.message).not.toContain(unknownKeyId);
    } finally {
      unknown();
    }
  });

  it('says when the default chain has no credentials: CUSTOS_ERR_SEAL_KMS_NO_CREDENTIALS, nothing sent', async () => {
    const restore = useAwsEnvironment();
    try {
      const e = await failure(wrapper().wrap(randomBytes(32), aad));
      expect(e.code).toBe('CUSTOS_ERR_SEAL_KMS_NO_CREDENTIALS');
      expect(kms.requests).toHaveLength(0);
    } finally {
      restore();
    }
  });

  it('says an unreachable KMS is unavailable', async () => {
    const gone = await startKmsWireServer({ region: kms.region });
    const endpoint = gone.endpoint;
    await gone.close();
    const w = new AwsKmsKeyWrapper(
      { keyId: key.arn, region: kms.region, endpoint },
      { maxAttempts: 2, attemptTimeoutMs: 500, totalTimeoutMs: 3_000 },
    );
    wrappers.push(w);
    expect((await failure(w.wrap(randomBytes(32), aad))).code).toBe('CUSTOS_ERR_SEAL_UNAVAILABLE');
  });

  it('checks its health by decrypting a probe: passes while the key works, says why once it does not', async () => {
    const w = wrapper();
    await w.checkHealth();
    await w.checkHealth();
    expect(kms.requests).toEqual(['TrentService.Encrypt', 'TrentService.Decrypt', 'TrentService.Decrypt']);
    kms.faults.disabled.add(key.id);
    expect((await failure(w.checkHealth())).code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
    kms.faults.disabled.clear();
    kms.faults.deny = true;
    expect((await failure(w.checkHealth())).code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
    kms.faults.deny = false;
    await w.checkHealth();
  });

  it('answers an unsigned request with the real error shape', async () => {
    const res = await fetch(kms.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.Decrypt' },
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(((await res.json()) as { __type: string }).__type).toBe('MissingAuthenticationTokenException');
  });
});

describe('parseAwsKmsSealConfig', () => {
  const base = { type: 'awskms', key_id: 'alias/custos-root', region: 'eu-west-1' };
  it('reads key_id, region, endpoint and cluster', () => {
    expect(
      parseAwsKmsSealConfig({ ...base, endpoint: 'https://kms.eu-west-1.amazonaws.com', cluster: 'prod-1' }),
    ).toEqual({
      keyId: 'alias/custos-root',
      region: 'eu-west-1',
      endpoint: 'https://kms.eu-west-1.amazonaws.com',
      cluster: 'prod-1',
    });
  });
  it('refuses credentials in the config, naming the default chain and echoing no value', () => {
    const secret = `test-${randomBytes(8).toString('hex')}`;
    for (const k of ['secret_access_key', 'access_key_id', 'session_token']) {
      let e: unknown;
      try {
        parseAwsKmsSealConfig({ ...base, [k]: secret });
      } catch (error) {
        e = error;
      }
      expect((e as CustosError).code).toBe('CUSTOS_ERR_SEAL_CONFIG_INVALID');
      expect((e as CustosError).message).toContain('default provider chain');
      expect((e as CustosError).message).not.toContain(secret);
    }
  });
  it('refuses malformed key ids, regions and plain-http endpoints off loopback', () => {
    for (const bad of [
      { ...base, key_id: 'not a key' },
      { ...base, region: 'EU west' },
      { ...base, endpoint: 'http://kms.example.com' },
      { ...base, endpoint: 'https://user:pw@kms.example.com' },
      { ...base, cluster: 'a b' },
    ]) {
      expect(() => parseAwsKmsSealConfig(bad)).toThrow(
        expect.objectContaining({ code: 'CUSTOS_ERR_SEAL_CONFIG_INVALID' }),
      );
    }
  });
});
