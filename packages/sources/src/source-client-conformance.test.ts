import { type CustosError, EgressPolicy, type SourceClient, SourceFault, type SourceRecord } from '@custos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useAwsEnvironment } from '../../seals/src/test-support/aws-env.js';
import { azureTestDeps, useAzureEnvironment } from '../../seals/src/test-support/azure-env.js';
import { type AzureTokenServer, startAzureTokenServer } from '../../seals/src/test-support/azure-token-server.js';
import {
  type KeyVaultWireServer,
  startKeyVaultWireServer,
} from '../../seals/src/test-support/key-vault-wire-server.js';
import {
  type SecretsManagerWireServer,
  startSecretsManagerWireServer,
} from '../../seals/src/test-support/secrets-manager-wire-server.js';
import { createTestTls, type TestTls } from '../../seals/src/test-support/test-tls.js';
import { createSourceClientFactory } from './create-source-client.js';

// One behaviour suite for every source client (as the storage adapters have
// theirs), run against each cloud's wire-compatible local server — not the
// clouds. What the core relies on: versions with stages, values by version,
// names, and every failure as a classified SourceFault (never the SDK's error).

interface Cloud {
  readonly name: string;
  client(egress?: EgressPolicy): SourceClient;
  /** Writes a new current version of `name` (listed as `name`). */
  put(name: string, value: string): void;
  /** The name the client is asked for (the core adds the source's prefix). */
  full(name: string): string;
  deny(on: boolean): void;
  throttle(n: number): void;
  delay(ms: number): void;
  requests(): number;
  /** Text the cloud's error messages carry that custos must drop. */
  leaks(): string[];
}

let sm: SecretsManagerWireServer;
let tls: TestTls;
let tokens: AzureTokenServer;
let vault: KeyVaultWireServer;
const restore: Array<() => void> = [];
const loopback = () => new EgressPolicy({ allow: ['127.0.0.1'] });

const record = (r: Partial<SourceRecord>): SourceRecord => ({
  name: 'conformance',
  type: 'aws-secrets-manager',
  prefix: '',
  format: 'auto',
  cache_ttl_seconds: 0,
  timeout_ms: 5_000,
  created_time: '2026-01-01T00:00:00.000Z',
  updated_time: '2026-01-01T00:00:00.000Z',
  ...r,
});

const clouds: Cloud[] = [
  {
    name: 'aws-secrets-manager',
    client: (egress = loopback()) =>
      createSourceClientFactory()(
        record({ type: 'aws-secrets-manager', region: sm.region, endpoint: sm.endpoint, prefix: 'team/' }),
        { egress },
      ),
    put: (name, value) => sm.putSecret(`team/${name}`, value),
    full: (name) => `team/${name}`,
    deny: (on) => {
      sm.faults.deny = on;
    },
    throttle: (n) => {
      sm.faults.throttle = n;
    },
    delay: (ms) => {
      sm.faults.delayMs = ms;
    },
    requests: () => sm.requests.length,
    leaks: () => [sm.account, 'arn:aws', sm.credentials.accessKeyId],
  },
  {
    name: 'azure-key-vault',
    client: (egress = loopback()) =>
      createSourceClientFactory({
        azure: {
          credential: azureTestDeps(tls).credential,
          clientOptions: { disableChallengeResourceVerification: true },
        },
      })(record({ type: 'azure-key-vault', vault_url: vault.vaultUrl, tls_ca: tls.ca }), { egress }),
    put: (name, value) => {
      vault.secrets.setSecret(name, value);
    },
    full: (name) => name,
    deny: (on) => {
      vault.faults.deny = on;
    },
    throttle: (n) => {
      vault.faults.throttle = n;
      vault.faults.retryAfterSeconds = 1;
    },
    delay: (ms) => {
      vault.faults.delayMs = ms;
    },
    requests: () => vault.requests.length,
    leaks: () => ['permission on this key vault', tokens.clientSecret],
  },
];

beforeAll(async () => {
  sm = await startSecretsManagerWireServer();
  tls = createTestTls();
  tokens = await startAzureTokenServer(tls);
  vault = await startKeyVaultWireServer(tls, tokens);
  restore.push(useAwsEnvironment(sm.credentials), useAzureEnvironment(tokens, tokens));
});
afterAll(async () => {
  await sm?.close();
  await vault?.close();
  await tokens?.close();
  for (const r of restore) r();
});

const fault = async (p: Promise<unknown>) => {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a failure').toBeDefined();
  return error as Error;
};

describe.each(clouds)('source client conformance: $name', (cloud) => {
  const signal = () => AbortSignal.timeout(5_000);

  it('versions carry the stages: the newest is current, the one it replaced previous; values by version', async () => {
    const client = cloud.client();
    cloud.put('app-db', 'v1-fake');
    cloud.put('app-db', '{"password":"v2-fake"}');
    const versions = await client.versions(cloud.full('app-db'), signal());
    expect(versions).toHaveLength(2);
    const [older, newer] = [...versions].sort((a, b) => (a.created_time < b.created_time ? -1 : 1));
    expect(newer?.stage).toBe('current');
    expect(older?.stage).toBe('previous');
    expect((await client.read(cloud.full('app-db'), newer!.id, signal())).value).toBe('{"password":"v2-fake"}');
    expect((await client.read(cloud.full('app-db'), older!.id, signal())).value).toBe('v1-fake');
  });

  it('lists names (the prefix removed)', async () => {
    cloud.put('listed', 'x');
    expect(await cloud.client().list(100, signal())).toEqual(expect.arrayContaining(['app-db', 'listed']));
  });

  it('a missing secret is not_found', async () => {
    const e = await fault(cloud.client().versions(cloud.full('missing'), signal()));
    expect(e).toBeInstanceOf(SourceFault);
    expect((e as SourceFault).kind).toBe('not_found');
  });

  it('a refusal is denied, and nothing of the cloud’s message is kept', async () => {
    cloud.deny(true);
    const e = await fault(cloud.client().versions(cloud.full('app-db'), signal()));
    cloud.deny(false);
    expect((e as SourceFault).kind).toBe('denied');
    for (const leak of cloud.leaks()) expect(`${e.message} ${e.stack}`).not.toContain(leak);
  });

  it('throttling is throttled after exactly one request: the SDK does not retry (the core does, bounded)', async () => {
    const client = cloud.client();
    await client.versions(cloud.full('app-db'), signal()); // the bearer challenge, for Azure, happens here
    cloud.throttle(1);
    const before = cloud.requests();
    const e = await fault(client.versions(cloud.full('app-db'), signal()));
    cloud.throttle(0);
    expect((e as SourceFault).kind).toBe('throttled');
    expect(cloud.requests() - before).toBe(1);
  });

  it('a slow answer is cut off by the caller’s signal', async () => {
    const client = cloud.client();
    await client.versions(cloud.full('app-db'), signal());
    cloud.delay(3_000);
    const started = Date.now();
    const e = await fault(client.versions(cloud.full('app-db'), AbortSignal.timeout(300)));
    cloud.delay(0);
    expect(e).toBeInstanceOf(SourceFault);
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('a destination the egress policy refuses is never contacted', async () => {
    const before = cloud.requests();
    const e = await fault(cloud.client(new EgressPolicy()).versions(cloud.full('app-db'), signal()));
    expect((e as CustosError).code).toBe('CUSTOS_ERR_EGRESS_REFUSED');
    expect(cloud.requests()).toBe(before);
  });
});
