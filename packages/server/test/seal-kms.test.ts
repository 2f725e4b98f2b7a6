import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { CustosNode, EgressPolicy, type RootKeyWrapper } from '@custos/core';
import { AwsKmsKeyWrapper, AzureKeyVaultKeyWrapper, createRootKeyWrapper } from '@custos/seals';
import { createStorage } from '@custos/storage';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
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
import { resolveServerConfig } from '../src/server-config.js';
import { startServer } from '../src/start-server.js';
import { auditEvents } from './test-server.js';

// A custos node auto-unsealing from the cloud KMS seals — verified against
// wire-compatible local servers (AWS KMS with SigV4 checks; Azure Key Vault
// with Entra ID bearer tokens over TLS), not against the clouds.

interface Cloud {
  readonly name: string;
  wrapper(): RootKeyWrapper;
  deny(on: boolean): void;
  /** Throttle every request (on) or none. */
  throttle(on: boolean): void;
  /** Answer after this long (0: at once). */
  delay(ms: number): void;
  /** What must never appear in a response, a log or an audit event. */
  secrets(): string[];
}

let kms: KmsWireServer;
let kmsKey: { arn: string };
let tls: TestTls;
let tokens: AzureTokenServer;
let vault: KeyVaultWireServer;
const restore: Array<() => void> = [];
const limits = { attemptTimeoutMs: 1_000, totalTimeoutMs: 5_000 };

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
    throttle: (on) => {
      kms.faults.throttle = on ? Number.POSITIVE_INFINITY : 0;
    },
    delay: (ms) => {
      kms.faults.delayMs = ms;
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
    throttle: (on) => {
      vault.faults.throttle = on ? Number.POSITIVE_INFINITY : 0;
    },
    delay: (ms) => {
      vault.faults.delayMs = ms;
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

  it('throttled or silent at start: the start fails with CUSTOS_ERR_SEAL_UNAVAILABLE within its bound, sealed', async () => {
    const dir = mkdtempSync(join(tmpdir(), `custos-seal-${cloud.name}-`));
    try {
      const first = await startNode(dir, cloud.wrapper());
      await first.start();
      await first.node.close();
      for (const fault of [() => cloud.throttle(true), () => cloud.delay(20_000)]) {
        fault();
        const n = await startNode(dir, cloud.wrapper());
        const started = Date.now();
        const error = await n.start().then(
          () => undefined,
          (e: unknown) => e as { code?: string },
        );
        expect(error?.code).toBe('CUSTOS_ERR_SEAL_UNAVAILABLE');
        // The wrappers here are built with a 5 s deadline per call.
        expect(Date.now() - started).toBeLessThan(12_000);
        expect(n.node.sealed).toBe(true);
        await n.node.close();
        cloud.throttle(false);
        cloud.delay(0);
      }
    } finally {
      cloud.throttle(false);
      cloud.delay(0);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

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

describe('the awskms seal from the server config file, end to end', () => {
  it('starts, initialises and auto-unseals through seal { type: awskms, … }; a throttled KMS at runtime seals with CUSTOS_ERR_SEAL_UNAVAILABLE; nothing secret is logged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-seal-awskms-config-'));
    const lines: string[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const file = join(dir, 'config.json');
    const seal = {
      type: 'aws-kms',
      key_id: kmsKey.arn,
      region: kms.region,
      endpoint: kms.endpoint,
      cluster: 'prod-eu-1',
      health_interval: '500ms',
    };
    writeFileSync(file, JSON.stringify({ data_dir: dir, listen: '127.0.0.1:0', seal }));
    try {
      const first = await startServer(resolveServerConfig({ config: file }, tmpdir()), logger);
      const rootToken = readFileSync(join(dir, 'root-token'), 'utf8').trim();
      const call = (server: typeof first, method: string, path: string, body?: unknown) =>
        fetch(`${server.address}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${rootToken}`,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
      try {
        expect(
          (await call(first, 'PUT', '/v1/secrets/data/kv/app/db', { data: { password: 'fake-pw-1' } })).status,
        ).toBe(200);
        const status = await (await call(first, 'GET', '/v1/sys/seal-status')).json();
        expect(status).toMatchObject({ initialized: true, sealed: false, type: 'wrapped', wrapper: 'awskms' });
      } finally {
        await first.close();
      }
      const second = await startServer(resolveServerConfig({ config: file }, tmpdir()), logger);
      try {
        const read = (await (await call(second, 'GET', '/v1/secrets/data/kv/app/db')).json()) as { data: unknown };
        expect(read.data).toEqual({ password: 'fake-pw-1' });
        kms.faults.throttle = Number.POSITIVE_INFINITY;
        let sealed: { sealed?: boolean; reason?: string } = {};
        for (let i = 0; i < 300 && sealed.sealed !== true; i++) {
          sealed = (await (await call(second, 'GET', '/v1/sys/seal-status')).json()) as typeof sealed;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(sealed).toMatchObject({ sealed: true, reason: 'CUSTOS_ERR_SEAL_UNAVAILABLE' });
        kms.faults.throttle = 0;
        for (let i = 0; i < 300 && sealed.sealed !== false; i++) {
          sealed = (await (await call(second, 'GET', '/v1/sys/seal-status')).json()) as typeof sealed;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(sealed.sealed).toBe(false);
      } finally {
        kms.faults.throttle = 0;
        await second.close();
      }
      const log = lines.join('');
      expect(log).not.toContain(kms.credentials.secretAccessKey);
      expect(log).not.toContain(kms.credentials.accessKeyId);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('rotate-seal re-wraps the root key under another KMS key without downtime; the switched config unseals', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-seal-awskms-rotate-'));
    const next = kms.createKey();
    const configFor = (keyId: string) => {
      const file = join(dir, `config-${keyId.slice(-6)}.json`);
      const seal = { type: 'awskms', key_id: keyId, region: kms.region, endpoint: kms.endpoint };
      writeFileSync(file, JSON.stringify({ data_dir: dir, listen: '127.0.0.1:0', seal }));
      return file;
    };
    const start = (file: string) =>
      startServer(resolveServerConfig({ config: file }, tmpdir()), pino({ level: 'silent' }));
    try {
      const server = await start(configFor(kmsKey.arn));
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
        await call('PUT', '/v1/secrets/data/kv/app/r', { data: { v: 'fake-r' } });
        const rotated = await call('POST', '/v1/sys/seal/rotate', { key: next.arn });
        expect(rotated.status).toBe(200);
        expect(rotated.json).toEqual({
          generation: 2,
          seal_key: { type: 'awskms', key_id: next.arn, region: kms.region },
        });
        expect((await call('GET', '/v1/secrets/data/kv/app/r')).json.data).toEqual({ v: 'fake-r' });
        // custos does not create KMS keys; a key KMS does not know is refused, nothing written.
        expect((await call('POST', '/v1/sys/seal/rotate', { key: next.arn, create_key: true })).json.error.code).toBe(
          'CUSTOS_ERR_SEAL_UNSUPPORTED',
        );
        const unknown = `arn:aws:kms:${kms.region}:111122223333:key/00000000-0000-0000-0000-000000000000`;
        expect((await call('POST', '/v1/sys/seal/rotate', { key: unknown })).json.error.code).toBe(
          'CUSTOS_ERR_SEAL_KEY_NOT_FOUND',
        );
      } finally {
        await server.close();
      }
      const switched = await start(configFor(next.arn));
      try {
        const r = await fetch(`${switched.address}/v1/secrets/data/kv/app/r`, {
          headers: { authorization: `Bearer ${rootToken}` },
        });
        expect(((await r.json()) as { data: unknown }).data).toEqual({ v: 'fake-r' });
      } finally {
        await switched.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('the azurekeyvault section reaches the factory as a Key Vault wrapper, credentials in it refused', async () => {
    const config = resolveServerConfig(
      {
        config: (() => {
          const dir = mkdtempSync(join(tmpdir(), 'custos-seal-akv-config-'));
          const f = join(dir, 'config.json');
          const section = { type: 'azurekeyvault', vault_url: 'https://custos-test.vault.azure.net', key_name: 'root' };
          writeFileSync(f, JSON.stringify({ data_dir: dir, seal: section }));
          return f;
        })(),
      },
      tmpdir(),
    );
    expect(config.seal).toBe('wrapped');
    const wrapper = await createRootKeyWrapper(config.sealSettings!);
    expect(wrapper).toBeInstanceOf(AzureKeyVaultKeyWrapper);
    expect(wrapper.describe()).toEqual({
      type: 'azurekeyvault',
      vault_url: 'https://custos-test.vault.azure.net',
      key_name: 'root',
    });
    await wrapper.close();
    await expect(
      createRootKeyWrapper({ ...config.sealSettings!, client_secret: 'test-not-a-secret' }),
    ).rejects.toMatchObject({ code: 'CUSTOS_ERR_SEAL_CONFIG_INVALID' });
    await expect(createRootKeyWrapper(config.sealSettings!, { createKey: true })).rejects.toMatchObject({
      code: 'CUSTOS_ERR_SEAL_UNSUPPORTED',
    });
  });
});
