import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustosNode, EgressPolicy, type RootKeyWrapper } from '@custos/core';
import { AwsKmsKeyWrapper, AzureKeyVaultKeyWrapper } from '@custos/seals';
import { createStorage } from '@custos/storage';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useAwsEnvironment } from '../../seals/src/test-support/aws-env.js';
import { azureTestDeps, useAzureEnvironment } from '../../seals/src/test-support/azure-env.js';
import { type AzureTokenServer, startAzureTokenServer } from '../../seals/src/test-support/azure-token-server.js';
import {
  type KeyVaultWireServer,
  startKeyVaultWireServer,
} from '../../seals/src/test-support/key-vault-wire-server.js';
import { type KmsWireServer, startKmsWireServer } from '../../seals/src/test-support/kms-wire-server.js';
import { createTestTls, type TestTls } from '../../seals/src/test-support/test-tls.js';
import { buildApp } from '../src/app.js';
import { auditEvents } from './test-server.js';

// A custos node auto-unsealing from the cloud KMS seals — verified against
// wire-compatible local servers (AWS KMS with SigV4 checks; Azure Key Vault
// with Entra ID bearer tokens over TLS), not against the clouds.

interface Cloud {
  readonly name: string;
  wrapper(): RootKeyWrapper;
  deny(on: boolean): void;
  /** What must never appear in a response, a log or an audit event. */
  secrets(): string[];
}

let kms: KmsWireServer;
let kmsKey: { arn: string };
let tls: TestTls;
let tokens: AzureTokenServer;
let vault: KeyVaultWireServer;
const restore: Array<() => void> = [];
const limits = { attemptTimeoutMs: 1_000, totalTimeoutMs: 5_000, healthCacheMs: 0 };

const clouds: Cloud[] = [
  {
    name: 'awskms',
    wrapper: () =>
      new AwsKmsKeyWrapper(
        { keyId: kmsKey.arn, region: kms.region, endpoint: kms.endpoint, cluster: 'test-cluster' },
        { ...limits, maxAttempts: 2 },
      ),
    deny: (on) => {
      kms.faults.deny = on;
    },
    secrets: () => [kms.credentials.secretAccessKey, kms.credentials.accessKeyId],
  },
  {
    name: 'azurekeyvault',
    wrapper: () =>
      new AzureKeyVaultKeyWrapper(
        { vaultUrl: vault.vaultUrl, keyName: 'custos-root' },
        { ...azureTestDeps(tls), limits: { ...limits, maxRetries: 1 } },
      ),
    deny: (on) => {
      vault.faults.deny = on;
    },
    secrets: () => [tokens.clientSecret, tokens.clientId],
  },
];

beforeAll(async () => {
  kms = await startKmsWireServer();
  kmsKey = kms.createKey();
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

/** A custos node on the SQLite file in `dir`, sealed by `wrapper`, with its HTTP app. */
async function startNode(dir: string, wrapper: RootKeyWrapper, onRootToken?: (t: string) => void) {
  const storage = await createStorage(`sqlite:${join(dir, 'custos.db')}`, { sqlite: { exclusive: true } });
  const node = new CustosNode({
    storage,
    seal: { type: 'wrapped', wrapper, healthIntervalMs: 100 },
    audit: { file: join(dir, 'audit.jsonl') },
    egress: new EgressPolicy({ allow: ['127.0.0.1'] }),
    ...(onRootToken ? { onRootToken } : {}),
  });
  return {
    node,
    storage,
    start: () => node.start(),
    app: async (): Promise<FastifyInstance> => {
      const app = await buildApp({ node, logger: false });
      await app.ready();
      return app;
    },
  };
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(clouds)('a custos node sealed by $name', (cloud) => {
  it('initialises, then auto-unseals from the wire server on the next start, and reads its secrets', async () => {
    const dir = mkdtempSync(join(tmpdir(), `custos-seal-${cloud.name}-`));
    try {
      let rootToken = '';
      const first = await startNode(dir, cloud.wrapper(), (t) => {
        rootToken = t;
      });
      await first.start();
      expect(first.node.sealed).toBe(false);
      const app1 = await first.app();
      const put = await app1.inject({
        method: 'PUT',
        url: '/v1/secrets/data/kv/finance/api',
        headers: { authorization: `Bearer ${rootToken}` },
        payload: { data: { key: 'test-value-123' } },
      });
      expect(put.statusCode).toBeLessThan(300);
      await app1.close();
      await first.node.close();

      const second = await startNode(dir, cloud.wrapper());
      await second.start();
      expect(second.node.sealed).toBe(false);
      const app2 = await second.app();
      const got = await app2.inject({
        method: 'GET',
        url: '/v1/secrets/data/kv/finance/api',
        headers: { authorization: `Bearer ${rootToken}` },
      });
      expect(got.statusCode).toBe(200);
      expect(JSON.stringify(got.json())).toContain('test-value-123');
      await app2.close();
      await second.node.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refused at start (access denied): the start fails with the seal’s code and the node stays sealed', async () => {
    const dir = mkdtempSync(join(tmpdir(), `custos-seal-${cloud.name}-`));
    try {
      const first = await startNode(dir, cloud.wrapper());
      await first.start();
      await first.node.close();
      cloud.deny(true);
      const second = await startNode(dir, cloud.wrapper());
      const error = await second.start().then(
        () => undefined,
        (e: unknown) => e as { code?: string; message?: string },
      );
      expect(error?.code).toBe('CUSTOS_ERR_SEAL_ACCESS_DENIED');
      expect(second.node.sealed).toBe(true);
      for (const s of cloud.secrets()) expect(String(error?.message)).not.toContain(s);
      const app = await second.app();
      const status = await app.inject({ method: 'GET', url: '/v1/sys/health' });
      expect(status.statusCode).toBe(503);
      expect(status.json()).toMatchObject({ initialized: true, sealed: true });
      await app.close();
      await second.node.close();
    } finally {
      cloud.deny(false);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('seals itself when the key is refused at runtime, says why, and unseals when access is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), `custos-seal-${cloud.name}-`));
    try {
      let rootToken = '';
      const n = await startNode(dir, cloud.wrapper(), (t) => {
        rootToken = t;
      });
      await n.start();
      const app = await n.app();
      const auth = { authorization: `Bearer ${rootToken}` };
      await app.inject({ method: 'PUT', url: '/v1/secrets/data/kv/a', headers: auth, payload: { data: { v: '1' } } });
      cloud.deny(true);
      await until(() => n.node.sealed);
      const refused = await app.inject({ method: 'GET', url: '/v1/secrets/data/kv/a', headers: auth });
      expect(refused.statusCode).toBe(503);
      expect(refused.json()).toMatchObject({ error: { code: 'CUSTOS_ERR_SEAL_ACCESS_DENIED' } });
      const status = await app.inject({ method: 'GET', url: '/v1/sys/seal-status' });
      expect(status.json()).toMatchObject({ sealed: true, reason: 'CUSTOS_ERR_SEAL_ACCESS_DENIED' });
      for (const s of cloud.secrets()) expect(refused.body + status.body).not.toContain(s);
      cloud.deny(false);
      await until(() => !n.node.sealed);
      const again = await app.inject({ method: 'GET', url: '/v1/secrets/data/kv/a', headers: auth });
      expect(again.statusCode).toBe(200);
      const events = await auditEvents(n.storage);
      const kinds = events.filter((e) => e.type === 'system').map((e) => e.kind);
      expect(kinds).toContain('seal_key_unavailable');
      expect(kinds).toContain('seal_key_restored');
      const text = JSON.stringify(events);
      for (const s of cloud.secrets()) expect(text).not.toContain(s);
      await app.close();
      await n.node.close();
    } finally {
      cloud.deny(false);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
