import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRootKeyWrapper } from '@custos/seals';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useAwsEnvironment } from '../../../seals/src/test-support/aws-env.js';
import { type KmsWireServer, startKmsWireServer } from '../../../seals/src/test-support/kms-wire-server.js';
import { resolveServerConfig } from '../../src/server-config.js';
import { startServer } from '../../src/start-server.js';

// Attack class: an operator with admin on sys/seal (not root of the cloud
// account) rotates the seal to a KMS key in an account they control. KMS
// accepts another account's key ARN when its key policy allows it, so
// custos must refuse it: else it stores a wrapping of the root key that the
// attacker's key opens (root key for anyone with a DB backup) and its
// health watch depends on the attacker's key (a kill switch).
//
// Against the wire-compatible local KMS server, not AWS.

const ATTACKER_ACCOUNT = '999988887777';
let kms: KmsWireServer;
let restore: () => void;

beforeAll(async () => {
  kms = await startKmsWireServer();
  restore = useAwsEnvironment(kms.credentials);
});

afterAll(async () => {
  restore();
  await kms.close();
});

describe('rotate-seal (awskms) stays in the current key’s account and region', () => {
  it('refuses a cross-account ARN (current key named by bare id: its home comes from DescribeKey); wrapping and health key unchanged; a same-account key id still rotates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-adv-rotate-xacct-'));
    const current = kms.createKey();
    const attacker = kms.createKey({ account: ATTACKER_ACCOUNT });
    const next = kms.createKey();
    const file = join(dir, 'config.json');
    const seal = {
      type: 'awskms',
      key_id: current.id,
      region: kms.region,
      endpoint: kms.endpoint,
      health_interval: '500ms',
    };
    writeFileSync(file, JSON.stringify({ data_dir: dir, listen: '127.0.0.1:0', seal }));
    const server = await startServer(resolveServerConfig({ config: file }, tmpdir()), pino({ level: 'silent' }));
    const rootToken = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    const call = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${server.address}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${rootToken}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON the server answered
      return { status: r.status, json: (await r.json()) as any };
    };
    try {
      await call('PUT', '/v1/secrets/data/kv/app/x', { data: { v: 'fake-x' } });
      const refused = await call('POST', '/v1/sys/seal/rotate', { key: attacker.arn });
      expect(refused.status).toBe(400);
      expect(refused.json.error.code).toBe('CUSTOS_ERR_VALIDATION');
      expect(JSON.stringify(refused.json)).not.toContain(ATTACKER_ACCOUNT);
      // Another region of the same account: refused too.
      const otherRegion = current.arn.replace(`:${kms.region}:`, ':us-east-1:');
      expect((await call('POST', '/v1/sys/seal/rotate', { key: otherRegion })).json.error.code).toBe(
        'CUSTOS_ERR_VALIDATION',
      );
      // Nothing was wrapped under the attacker's key, nor anything sent to it. (Counted by key: the health
      // watch encrypts its probe under the current key once, at its first check, which may come at any time.)
      expect(kms.keyRequests.filter((r) => r.keyId === attacker.id)).toEqual([]);
      // The health watch still depends on the current key, not the attacker's:
      // disabling the attacker's key does not seal the node.
      kms.faults.disabled.add(attacker.id);
      await new Promise((r) => setTimeout(r, 1_500));
      expect((await call('GET', '/v1/sys/seal-status')).json).toMatchObject({ sealed: false });
      // A key of the same account named by key id rotates; generation 2 shows no wrapping was stored before.
      const rotated = await call('POST', '/v1/sys/seal/rotate', { key: next.id });
      expect(rotated.status).toBe(200);
      expect(rotated.json).toEqual({
        generation: 2,
        seal_key: { type: 'awskms', key_id: next.id, region: kms.region },
      });
      expect((await call('GET', '/v1/secrets/data/kv/app/x')).json.data).toEqual({ v: 'fake-x' });
    } finally {
      kms.faults.disabled.clear();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a current key ARN: a cross-account target ARN is refused before any KMS call; a same-account ARN opens', async () => {
    const current = kms.createKey();
    const attacker = kms.createKey({ account: ATTACKER_ACCOUNT });
    const next = kms.createKey();
    const section = { type: 'awskms', key_id: current.arn, region: kms.region, endpoint: kms.endpoint };
    const callsBefore = kms.requests.length;
    await expect(
      createRootKeyWrapper(section, { target: { key: attacker.arn, createKey: false } }),
    ).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
    expect(kms.requests.length).toBe(callsBefore);
    await expect(
      createRootKeyWrapper(section, { target: { key: 'https://attacker.example/key', createKey: false } }),
    ).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
    const opened = await createRootKeyWrapper(section, { target: { key: next.arn, createKey: false } });
    expect(opened.describe()).toEqual({ type: 'awskms', key_id: next.arn, region: kms.region });
    await opened.close();
  });

  it('defence in depth: a target that resolves (DescribeKey) to another account is refused', async () => {
    // The wire server resolves a bare id across its accounts (real KMS would
    // not); this stands for any name that KMS resolves outside the account.
    const current = kms.createKey();
    const attacker = kms.createKey({ account: ATTACKER_ACCOUNT });
    const section = { type: 'awskms', key_id: current.arn, region: kms.region, endpoint: kms.endpoint };
    await expect(
      createRootKeyWrapper(section, { target: { key: attacker.id, createKey: false } }),
    ).rejects.toMatchObject({ code: 'CUSTOS_ERR_VALIDATION' });
  });
});

describe('rotate-seal (azurekeyvault) stays in the configured vault', () => {
  const section = { type: 'azurekeyvault', vault_url: 'https://custos-prod.vault.azure.net/', key_name: 'custos-root' };

  it('refuses a target that names another vault, host or key path; nothing is opened', async () => {
    for (const key of [
      'https://attacker.vault.azure.net/keys/custos-root',
      'attacker.vault.azure.net/keys/x',
      'custos-root/0123456789abcdef',
      '../custos-root',
    ]) {
      await expect(createRootKeyWrapper(section, { target: { key, createKey: false } })).rejects.toMatchObject({
        code: 'CUSTOS_ERR_VALIDATION',
      });
    }
  });

  it('a key name opens a wrapper in the configured vault (the vault URL is the config’s)', async () => {
    const opened = await createRootKeyWrapper(
      { ...section, key_version: '0123456789abcdef0123456789abcdef' },
      { target: { key: 'custos-root-2027', createKey: false } },
    );
    expect(opened.describe()).toEqual({
      type: 'azurekeyvault',
      vault_url: 'https://custos-prod.vault.azure.net',
      key_name: 'custos-root-2027',
    });
    await opened.close();
  });
});
