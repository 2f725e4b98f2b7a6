import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustosNode, EgressPolicy, type RootKeyWrapper } from '@custos/core';
import { AwsKmsKeyWrapper, AzureKeyVaultKeyWrapper } from '@custos/seals';
import { createStorage } from '@custos/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope } from '../../../seals/src/azure-key-vault/key-vault-envelope.js';
import { useAwsEnvironment } from '../../../seals/src/test-support/aws-env.js';
import { azureTestDeps, useAzureEnvironment } from '../../../seals/src/test-support/azure-env.js';
import { type AzureTokenServer, startAzureTokenServer } from '../../../seals/src/test-support/azure-token-server.js';
import {
  type KeyVaultWireServer,
  startKeyVaultWireServer,
} from '../../../seals/src/test-support/key-vault-wire-server.js';
import { type KmsWireServer, startKmsWireServer } from '../../../seals/src/test-support/kms-wire-server.js';
import { createTestTls, type TestTls } from '../../../seals/src/test-support/test-tls.js';

// Attack class: someone with write access to storage (or a backup) against a
// cloud KMS seal. The wrapped root key is in untrusted storage; what they can
// edit must fail closed, and nothing they write may make custos talk to,
// or send its cloud token to, a host of their choosing.
//
// Against wire-compatible local servers, not the clouds.

let kms: KmsWireServer;
let key: { arn: string };
let attackerKey: { arn: string };
let tls: TestTls;
let tokens: AzureTokenServer;
let vault: KeyVaultWireServer;
const restore: Array<() => void> = [];
const limits = { attemptTimeoutMs: 1_000, totalTimeoutMs: 5_000 };

beforeAll(async () => {
  kms = await startKmsWireServer();
  key = kms.createKey();
  attackerKey = kms.createKey();
  restore.push(useAwsEnvironment(kms.credentials));
  tls = createTestTls();
  tokens = await startAzureTokenServer(tls);
  vault = await startKeyVaultWireServer(tls, tokens);
  vault.createKey('custos-root');
  restore.push(useAzureEnvironment(tokens, tokens));
});

afterAll(async () => {
  for (const r of restore) r();
  await kms.close();
  await vault.close();
  await tokens.close();
  tls.dispose();
});

const awsWrapper = (keyId = key.arn) =>
  new AwsKmsKeyWrapper({ keyId, region: kms.region, endpoint: kms.endpoint }, { ...limits, maxAttempts: 1 });
const azureWrapper = () =>
  new AzureKeyVaultKeyWrapper(
    { vaultUrl: vault.vaultUrl, keyName: 'custos-root' },
    { ...azureTestDeps(tls), limits: { ...limits, maxRetries: 0 } },
  );

/** Initialises a node sealed by `wrapper` in a fresh directory; returns the directory. */
async function initialised(wrapper: RootKeyWrapper): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'custos-adv-kms-'));
  const node = await nodeIn(dir, wrapper);
  await node.start();
  await node.close();
  return dir;
}

async function nodeIn(dir: string, wrapper: RootKeyWrapper): Promise<CustosNode> {
  const storage = await createStorage(`sqlite:${join(dir, 'custos.db')}`, { sqlite: { exclusive: true } });
  return new CustosNode({
    storage,
    seal: { type: 'wrapped', wrapper, healthIntervalMs: 3_600_000 },
    audit: { file: join(dir, 'audit.jsonl') },
    egress: new EgressPolicy({ allow: ['127.0.0.1'] }),
  });
}

/** Rewrites the stored wrapping's blob while no node runs. */
async function editBlob(dir: string, edit: (blob: Buffer) => Uint8Array): Promise<void> {
  const storage = createStorage(`sqlite:${join(dir, 'custos.db')}`);
  await storage.migrate();
  try {
    const [rowKey] = await storage.entries.list('sys', 'seal-wrapped/', { limit: 10 });
    const entry = await storage.entries.get('sys', rowKey!);
    const row = JSON.parse(Buffer.from(entry!.value).toString('utf8')) as { blob: string };
    const blob = Buffer.from(edit(Buffer.from(row.blob, 'base64'))).toString('base64');
    await storage.entries.put('sys', rowKey!, Buffer.from(JSON.stringify({ ...row, blob })));
  } finally {
    await storage.close();
  }
}

async function startFails(dir: string, wrapper: RootKeyWrapper): Promise<{ code?: string; sealed: boolean }> {
  const node = await nodeIn(dir, wrapper);
  const error = await node.start().then(
    () => undefined,
    (e: unknown) => e as { code?: string },
  );
  const sealed = node.sealed;
  await node.close();
  return { ...(error?.code ? { code: error.code } : {}), sealed };
}

describe('a tampered AWS KMS wrapping fails closed', () => {
  it('a blob the attacker encrypted under their own KMS key (same encryption context) is refused: Decrypt is pinned to the configured key', async () => {
    const dir = await initialised(awsWrapper());
    try {
      // The attacker controls another key's policy and can encrypt anything
      // they like under it, with the context custos uses — but not under
      // the configured key.
      const aad = Buffer.from('whatever the attacker guesses');
      const theirs = await awsWrapper(attackerKey.arn).wrap(randomBytes(32), aad);
      await editBlob(dir, () => theirs);
      kms.requests.length = 0;
      expect(await startFails(dir, awsWrapper())).toEqual({ code: 'CUSTOS_ERR_UNSEAL_FAILED', sealed: true });
      expect(kms.requests).toEqual(['TrentService.Decrypt']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a flipped bit in the KMS ciphertext: CUSTOS_ERR_UNSEAL_FAILED, sealed', async () => {
    const dir = await initialised(awsWrapper());
    try {
      await editBlob(dir, (b) => {
        b[b.length - 3]! ^= 0x10;
        return b;
      });
      expect(await startFails(dir, awsWrapper())).toEqual({ code: 'CUSTOS_ERR_UNSEAL_FAILED', sealed: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a tampered Azure Key Vault wrapping fails closed', () => {
  it('a key id moved to another host is refused before any request: the bearer token never leaves for it', async () => {
    let connections = 0;
    const attacker = createServer({ cert: tls.cert, key: tls.key }, (_req, res) => res.end('{}'));
    attacker.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
    const port = (attacker.address() as AddressInfo).port;
    const dir = await initialised(azureWrapper());
    try {
      await editBlob(dir, (b) => {
        const envelope = decodeEnvelope(b);
        const version = envelope.kid.split('/').pop();
        return encodeEnvelope({ ...envelope, kid: `https://127.0.0.1:${port}/keys/custos-root/${version}` });
      });
      vault.requests.length = 0;
      expect(await startFails(dir, azureWrapper())).toEqual({ code: 'CUSTOS_ERR_UNSEAL_FAILED', sealed: true });
      expect(connections).toBe(0);
      expect(vault.requests).toHaveLength(0);
    } finally {
      await new Promise<void>((r) => attacker.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the envelope re-keyed to another version or key name of the same vault, or an edited ciphertext: sealed', async () => {
    const other = vault.createKey('attacker-key');
    const dir = await initialised(azureWrapper());
    try {
      await editBlob(dir, (b) => {
        const envelope = decodeEnvelope(b);
        return encodeEnvelope({ ...envelope, kid: `${vault.vaultUrl}/keys/attacker-key/${other}` });
      });
      expect(await startFails(dir, azureWrapper())).toEqual({ code: 'CUSTOS_ERR_UNSEAL_FAILED', sealed: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const dir2 = await initialised(azureWrapper());
    try {
      await editBlob(dir2, (b) => {
        b[b.length - 1]! ^= 0x01;
        return b;
      });
      expect(await startFails(dir2, azureWrapper())).toEqual({ code: 'CUSTOS_ERR_UNSEAL_FAILED', sealed: true });
    } finally {
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});
