import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustosNode, type CustosNodeOptions, EgressPolicy, type EgressPolicyOptions, type Storage } from '@custos/core';
import { createStorage } from '@custos/storage';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../../../test-support/postgres.js';
import { buildApp } from '../src/app.js';
import type { DiskGuard } from '../src/disk-guard.js';
import { NodeHealth } from '../src/node-health.js';

export type Backend = 'sqlite' | 'postgres';

export interface TestServer {
  app: FastifyInstance;
  node: CustosNode;
  storage: Storage;
  dir: string;
  rootToken: string;
  /** `app.inject` with the given token (root by default). */
  call(options: InjectOptions & { token?: string | null }): ReturnType<FastifyInstance['inject']>;
  close(): Promise<void>;
}

/** A real custos node (dev seal, file audit sink) on a fresh SQLite file or PostgreSQL database. */
export async function startTestServer(
  backend: Backend,
  options: {
    seal?: 'dev' | 'shamir';
    audit?: CustosNodeOptions['audit'];
    engineFactory?: CustosNodeOptions['engineFactory'];
    awsStsEngineFactory?: CustosNodeOptions['awsStsEngineFactory'];
    /** Opens secret-source clients (`createSourceClientFactory` from `@custos/sources`). */
    sourceFactory?: CustosNodeOptions['sourceFactory'];
    /**
     * The egress policy. Default: loopback 127.0.0.1 allowed, because the
     * suites' databases, JWKS servers and webhook receivers listen there —
     * allowed explicitly, as an operator would, never by a test-only bypass.
     */
    egress?: EgressPolicyOptions;
    /** The node's issuer URL (`iss`, DPoP `htu` base); default custos's own. */
    issuer?: string;
    /** Wraps the storage the node uses (e.g. to watch its writes). */
    wrapStorage?: (storage: Storage) => Storage;
    /** The anomaly engine's configuration (default: every rule with its defaults). */
    anomaly?: CustosNodeOptions['anomaly'];
    /** The access-request webhook (docs/jit.md). */
    requestWebhook?: CustosNodeOptions['requestWebhook'];
    /** A disk guard for `GET /v1/sys/disk` and health's `disk_low` (made with the node's directory). */
    diskGuard?: (dir: string, node: CustosNode) => DiskGuard;
  } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'custos-server-test-'));
  let database: TestDatabase | undefined;
  let url: string;
  if (backend === 'postgres') {
    database = await createTestDatabase();
    url = database.url;
  } else {
    url = `sqlite:${join(dir, 'custos.db')}`;
  }
  // As the server runs: an exclusive SQLite connection, with its entry cache.
  const created = await createStorage(url, { sqlite: { exclusive: true } });
  const storage = options.wrapStorage ? options.wrapStorage(created) : created;
  let rootToken = '';
  const node = new CustosNode({
    storage,
    seal: options.seal === 'shamir' ? { type: 'shamir' } : { type: 'dev', keyFile: join(dir, 'dev-seal.key') },
    audit: options.audit ?? { file: join(dir, 'audit.jsonl') },
    ...(options.engineFactory ? { engineFactory: options.engineFactory } : {}),
    ...(options.awsStsEngineFactory ? { awsStsEngineFactory: options.awsStsEngineFactory } : {}),
    ...(options.sourceFactory ? { sourceFactory: options.sourceFactory } : {}),
    egress: new EgressPolicy(options.egress ?? { allow: ['127.0.0.1'] }),
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.anomaly ? { anomaly: options.anomaly } : {}),
    ...(options.requestWebhook ? { requestWebhook: options.requestWebhook } : {}),
    onRootToken: (token) => {
      rootToken = token;
    },
  });
  await node.start();
  const diskGuard = options.diskGuard?.(dir, node);
  const app = await buildApp({
    node,
    logger: false,
    ...(diskGuard ? { diskGuard, health: new NodeHealth({ disk: diskGuard }) } : {}),
  });
  await app.ready();
  return {
    app,
    node,
    storage,
    dir,
    get rootToken() {
      return rootToken;
    },
    call: ({ token, headers, ...rest }) =>
      app.inject({
        ...rest,
        headers: {
          ...(headers ?? {}),
          ...(token === null ? {} : { authorization: `Bearer ${token ?? rootToken}` }),
        },
      }),
    close: async () => {
      await app.close();
      await node.close();
      await database?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every record's event text in the audit store, for assertions. */
export async function auditEvents(storage: Storage): Promise<Array<Record<string, unknown>>> {
  const head = await storage.audit.head();
  if (!head) return [];
  const records = await storage.audit.range(1, head.seq);
  return records.map((r) => JSON.parse(r.event) as Record<string, unknown>);
}

export const readText = (path: string) => readFileSync(path, 'utf8');

/**
 * As an operator sets up a rotated database login: adds the user to the
 * engine's rotatable users, stores `{username, password}` at `path`, then
 * puts a database rotation policy on it for that user through `engine`
 * (with an optional schedule). Returns the policy's response.
 */
export async function putDatabaseRotation(
  s: TestServer,
  path: string,
  login: { engine: string; username: string; password: string },
  schedule: { every?: string; grace?: string } = {},
): ReturnType<TestServer['call']> {
  const engine = (await s.call({ method: 'GET', url: `/v1/engines/${login.engine}` })).json() as {
    rotatable_users?: string[];
  };
  await s.call({
    method: 'PUT',
    url: `/v1/engines/${login.engine}/rotatable-users`,
    payload: { users: [...(engine.rotatable_users ?? []), login.username] },
  });
  await s.call({
    method: 'PUT',
    url: `/v1/secrets/data/${path}`,
    payload: { data: { username: login.username, password: login.password } },
  });
  return s.call({
    method: 'PUT',
    url: `/v1/rotation/${path}`,
    payload: { rotator: { type: 'database', engine: login.engine, username: login.username }, ...schedule },
  });
}

/**
 * An RFC 8693 token exchange as a conforming client sends it: form-encoded,
 * no Authorization (the subject token is the credential), a repeated
 * parameter written as an array.
 */
export function tokenExchange(
  s: TestServer,
  params: Record<string, string | string[]>,
): ReturnType<TestServer['call']> {
  const form = new URLSearchParams();
  const all = {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    ...params,
  };
  for (const [name, value] of Object.entries(all)) {
    for (const v of Array.isArray(value) ? value : [value]) form.append(name, v);
  }
  return s.call({
    method: 'POST',
    url: '/v1/oauth/token',
    token: null,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: form.toString(),
  });
}

/** A root task of `role` started by the root operator, with an optional narrower scope. */
export async function startRoleTask(
  s: TestServer,
  role: string,
  scope?: string,
): Promise<{ token: string; task_id: string }> {
  const r = await s.call({
    method: 'POST',
    url: `/v1/roles/${role}/tasks`,
    payload: { ttl: '5m', ...(scope ? { scope } : {}) },
  });
  if (r.statusCode !== 200) throw new Error(`task start for ${role} failed: ${r.body}`);
  return r.json() as { token: string; task_id: string };
}

/** An obviously fake secret value, different every run. */
export const fakeSecret = (label = 'value') =>
  `fake-${label}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
