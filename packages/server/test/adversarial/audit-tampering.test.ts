import { type KeyObject, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  AUDIT_CHECKPOINT_GENESIS,
  AUDIT_GENESIS_HASH,
  type AuditCheckpoint,
  AuditFileLineReader,
  type AuditIntegrityError,
  type AuditRecord,
  type AuditSigner,
  auditChainHash,
  auditCheckpointLink,
  auditCheckpointStatement,
  auditEventRefs,
  CustosNode,
  type CustosNodeOptions,
  expandAuditEvent,
  formatAuditRecordLine,
  loadAuditKeys,
  parseAuditFileLine,
  runAuditArchive,
  SealManager,
  type Storage,
  signAuditCheckpoint,
  verifyAudit,
  verifyAuditFile,
} from '@custos/core';
import { createStorage } from '@custos/storage';
import Database from 'better-sqlite3';
import type { FastifyInstance, InjectOptions } from 'fastify';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../../test-support/postgres.js';
import { postgresSql, sqliteSql } from '../../../../test-support/raw-sql.js';
import { buildApp } from '../../src/app.js';
import { resolveServerConfig } from '../../src/server-config.js';
import { startServer } from '../../src/start-server.js';

// Audit tampering by someone with write access to a store: the SQLite file,
// the PostgreSQL tables, the JSON-lines audit file, both, and the seal too.
// Each test is named after the promise it checks (or, where it says so, the
// documented limit it pins); docs/audit.md states the same promises.
//
// The deployments use a checkpoint interval of 10 records so a test writes a
// few dozen records, not thousands; the rules are the same at 1,000.

type Backend = 'sqlite' | 'postgres';
const backends: Backend[] = hasPostgres() ? ['sqlite', 'postgres'] : ['sqlite'];
const EVERY = 10;
const INTEGRITY = 'CUSTOS_ERR_AUDIT_INTEGRITY';

interface Running {
  node: CustosNode;
  app: FastifyInstance;
  storage: Storage;
  call(options: InjectOptions & { token?: string }): ReturnType<FastifyInstance['inject']>;
  stop(): Promise<void>;
}

/** One deployment (data directory, database, audit file) that can be started, stopped and tampered with. */
class Deployment {
  readonly dir = mkdtempSync(join(tmpdir(), 'custos-audit-tamper-'));
  readonly auditFile = join(this.dir, 'audit.jsonl');
  readonly keyFile = join(this.dir, 'dev-seal.key');
  readonly audit: NonNullable<CustosNodeOptions['audit']>;
  /** What the node reported through onAuditIntegrityFailure (as the server logs it). */
  readonly failures: AuditIntegrityError[] = [];
  rootToken = '';
  publicKeys: ReadonlyMap<string, KeyObject> = new Map();
  url = '';
  #database: TestDatabase | undefined;
  #running: Running | undefined;

  constructor(
    readonly backend: Backend,
    options: { file?: boolean; fsync?: 'always' | 'never' } = {},
  ) {
    this.audit = {
      ...((options.file ?? true) ? { file: this.auditFile, fsync: options.fsync ?? 'always' } : {}),
      checkpointEvery: EVERY,
    };
  }

  async init(): Promise<this> {
    if (this.backend === 'postgres') {
      this.#database = await createTestDatabase();
      this.url = this.#database.url;
    } else {
      this.url = `sqlite:${join(this.dir, 'custos.db')}`;
    }
    return this;
  }

  /** Starts custos as the server does (dev seal, exclusive SQLite). */
  async start(): Promise<Running> {
    const storage = createStorage(this.url, { sqlite: { exclusive: true } });
    const node = new CustosNode({
      storage,
      seal: { type: 'dev', keyFile: this.keyFile },
      audit: this.audit,
      onRootToken: (token) => {
        this.rootToken = token;
      },
      onAuditIntegrityFailure: (error) => this.failures.push(error),
    });
    await node.start();
    if (!node.sealed) this.publicKeys = node.services().auditPublicKeys;
    const app = await buildApp({ node, logger: false });
    await app.ready();
    const running: Running = {
      node,
      app,
      storage,
      call: ({ token, headers, ...rest }) =>
        app.inject({ ...rest, headers: { ...(headers ?? {}), authorization: `Bearer ${token ?? this.rootToken}` } }),
      stop: async () => {
        await app.close();
        await node.close();
        this.#running = undefined;
      },
    };
    this.#running = running;
    return running;
  }

  /** Raw SQL with `?` placeholders, as someone with write access to the database runs it. */
  async sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    if (this.backend === 'sqlite') return sqliteSql<T>(join(this.dir, 'custos.db'), text, params);
    // custos keeps its tables in the `custos` schema.
    return postgresSql<T>(this.url, 'custos', text, params);
  }

  /**
   * The stored records as full events, read as an attacker with the code
   * reads them: compact events expanded with the dictionary table, derived
   * prev_hashes (empty) taken from the row before, 32-byte hashes as hex.
   */
  async records(): Promise<Array<{ seq: number; ts: string; prev_hash: string; hash: string; event: string }>> {
    const rows = await this.sql<{
      seq: number | string;
      ts: string;
      prev_hash: string;
      hash: string | Buffer;
      event: string;
    }>('SELECT seq, ts, prev_hash, hash, event FROM audit_log ORDER BY seq');
    const dictionary = new Map(
      (await this.sql<{ id: string; value: string }>('SELECT id, value FROM audit_dictionary')).map((e) => [
        e.id,
        e.value,
      ]),
    );
    let prev = AUDIT_GENESIS_HASH;
    return rows.map((r) => {
      const hash = typeof r.hash === 'string' ? r.hash : r.hash.toString('hex');
      const record = {
        seq: Number(r.seq),
        ts: r.ts,
        prev_hash: r.prev_hash === '' ? prev : r.prev_hash,
        hash,
        event: expandAuditEvent(r.event, (id) => dictionary.get(id)),
      };
      prev = hash;
      return record;
    });
  }

  async checkpointSeqs(): Promise<number[]> {
    return (await this.sql<{ seq: number | string }>('SELECT seq FROM audit_checkpoints ORDER BY seq')).map((r) =>
      Number(r.seq),
    );
  }

  /**
   * The attack of issue 11: edit one event, recompute every hash after it
   * (anyone can: the chain is plain SHA-256) and write the chain back.
   */
  async rewriteChainFrom(seq: number, edit: (event: string) => string = denyEdit): Promise<void> {
    const records = await this.records();
    let prev = records.find((r) => r.seq === seq - 1)?.hash ?? '0'.repeat(64);
    for (const r of records.filter((x) => x.seq >= seq)) {
      const event = r.seq === seq ? edit(r.event) : r.event;
      const hash = auditChainHash(prev, event);
      await this.sql('UPDATE audit_log SET event = ?, prev_hash = ?, hash = ? WHERE seq = ?', [
        event,
        prev,
        hash,
        r.seq,
      ]);
      prev = hash;
    }
  }

  /** Verifies the database offline (custos stopped) against the deployment's audit key. */
  async verifyDatabase() {
    const storage = createStorage(this.url);
    try {
      return await verifyAudit(storage.audit, { publicKeys: this.publicKeys, defaultEvery: EVERY });
    } finally {
      await storage.close();
    }
  }

  /**
   * What someone holding the seal (the dev key file) as well as the database
   * can do: unseal the barrier themselves and use the audit signing key.
   */
  async withSealedKey<T>(fn: (storage: Storage, signer: AuditSigner) => Promise<T>): Promise<T> {
    const storage = createStorage(this.url);
    try {
      const seals = new SealManager(storage.entries);
      await seals.unsealWithDevKey(this.keyFile);
      const { signer } = await loadAuditKeys(storage.entries, seals.barrier);
      const result = await fn(storage, signer);
      await seals.seal();
      return result;
    } finally {
      await storage.close();
    }
  }

  fileLines(): string[] {
    return readFileSync(this.auditFile, 'utf8').split('\n').filter(Boolean);
  }

  writeFileLines(lines: string[]): void {
    writeFileSync(this.auditFile, lines.length > 0 ? `${lines.join('\n')}\n` : '');
  }

  async dispose(): Promise<void> {
    await this.#running?.stop().catch(() => undefined);
    await this.#database?.drop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The file's records as full events (compact lines expanded, as `custos audit verify --file` reads them). */
function fileRecords(lines: string[]): AuditRecord[] {
  const reader = new AuditFileLineReader();
  return lines.flatMap((l) => {
    const parsed = reader.read(parseAuditFileLine(l)!);
    return parsed?.kind === 'record' ? [parsed.record] : [];
  });
}

const denyEdit = (event: string) => event.replace('"decision":"allow"', '"decision":"deny"');

/** Audited traffic: n secret writes through the HTTP API (two events each: request and response). */
async function traffic(s: Running, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await s.call({
      method: 'PUT',
      url: `/v1/secrets/data/kv/tamper/item-${i}`,
      payload: { data: { note: `fake-${i}-${Math.random().toString(36).slice(2)}` } },
    });
    expect(r.statusCode).toBe(200);
  }
}

/** The node refused to sign: sealed, saying why (code only, publicly), and told the operator the detail. */
async function expectRefused(d: Deployment, s: Running, detail: RegExp): Promise<void> {
  expect(s.node.sealed).toBe(true);
  const status = await s.app.inject({ method: 'GET', url: '/v1/sys/seal-status' });
  expect(status.json()).toEqual({ initialized: true, sealed: true, type: 'dev', reason: INTEGRITY });
  // Health says why too — a fixed word, never the detail — so a load
  // balancer's probe tells this node from one waiting for its keys.
  const health = await s.app.inject({ method: 'GET', url: '/v1/sys/health' });
  expect(health.statusCode).toBe(503);
  expect(health.json()).toEqual({
    initialized: true,
    sealed: true,
    degraded: true,
    problems: ['audit_integrity'],
    version: expect.any(String),
  });
  // Every seal status the node answers carries the reason, an unseal reset's included.
  const reset = await s.app.inject({ method: 'POST', url: '/v1/sys/unseal', payload: { reset: true } });
  expect(reset.json()).toEqual({ initialized: true, sealed: true, type: 'dev', reason: INTEGRITY });
  const verify = await s.call({ method: 'GET', url: '/v1/audit/verify' });
  expect(verify.statusCode).toBe(503);
  expect(d.failures.map((f) => f.code)).toEqual([INTEGRITY]);
  expect(d.failures[0]!.message).toMatch(detail);
}

const deployments: Deployment[] = [];
afterEach(async () => {
  for (const d of deployments.splice(0)) await d.dispose();
});
async function deployment(
  backend: Backend,
  options?: { file?: boolean; fsync?: 'always' | 'never' },
): Promise<Deployment> {
  const d = await new Deployment(backend, options).init();
  deployments.push(d);
  return d;
}

/** A deployment that served some traffic and was stopped cleanly: checkpoints at 10, 20, … and at its head. */
async function used(
  backend: Backend,
  options?: { file?: boolean; fsync?: 'always' | 'never'; requests?: number },
): Promise<Deployment> {
  const d = await deployment(backend, options);
  const s = await d.start();
  await traffic(s, options?.requests ?? 15);
  await s.stop();
  return d;
}

describe.each(backends)('audit tampering with write access to the database (%s)', (backend) => {
  it('a chain rewritten in the database with its checkpoints deleted is never signed: the node stays sealed with a reason', async () => {
    // The attack as reported: on the old code the restarted node signed a
    // fresh checkpoint at the forged head and `audit verify` said OK.
    const d = await used(backend);
    const before = await d.checkpointSeqs();
    expect(before.length).toBeGreaterThan(1);
    await d.rewriteChainFrom(5);
    await d.sql('DELETE FROM audit_checkpoints');

    const s = await d.start();
    await expectRefused(d, s, /file sink holds a checkpoint at seq \d+ that the database lacks/);
    await s.stop();
    expect(await d.checkpointSeqs()).toEqual([]);
  });

  it('the same attack is refused with an audit file that is not fsynced (the server default, durability "process")', async () => {
    const d = await used(backend, { fsync: 'never' });
    await d.rewriteChainFrom(5);
    await d.sql('DELETE FROM audit_checkpoints');

    const s = await d.start();
    await expectRefused(d, s, /file sink holds a checkpoint at seq \d+ that the database lacks/);
  });

  it('without a file sink, a rewritten chain with its checkpoints deleted is refused once longer than twice the interval', async () => {
    const d = await used(backend, { file: false });
    await d.rewriteChainFrom(5);
    await d.sql('DELETE FROM audit_checkpoints');

    const s = await d.start();
    await expectRefused(d, s, /records follow the last checkpoint \(seq 0\); at most 20 may/);
    await s.stop();
    expect(await d.checkpointSeqs()).toEqual([]);
    expect(await d.verifyDatabase()).toMatchObject({ ok: false, seq: 21, problem: 'checkpoint-missing' });
  });

  it('a chain rewritten under its checkpoints is refused at start, and verification names the first checkpoint it broke', async () => {
    const d = await used(backend, { file: false });
    await d.rewriteChainFrom(5);

    const s = await d.start();
    await expectRefused(d, s, /differs from its signed checkpoint/);
    await s.stop();
    expect(await d.verifyDatabase()).toMatchObject({ ok: false, seq: 10, problem: 'checkpoint-mismatch' });
  });

  it("a dictionary entry's last use lowered: the next archive run deletes it, and verification names the first online record that used it", async () => {
    // Two sessions: the first stop's checkpoint is where the archive will end; the second session's records stay online.
    const d = await used(backend, { file: false, requests: 6 });
    const cut = new Date();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const s = await d.start();
    await traffic(s, 6);
    await s.stop();
    // The attacker makes every entry look unused since long before any record.
    await d.sql('UPDATE audit_dictionary SET last_seq = ?', [-1_000_000_000]);
    // An archive run as the node makes one (its signer), up to the first session's last checkpoint.
    const archiveDir = join(d.dir, 'archive');
    mkdirSync(archiveDir);
    const run = await d.withSealedKey((storage, signer) =>
      runAuditArchive({ store: storage.audit, signer, dir: archiveDir, before: cut }),
    );
    const anchor = run.written!.manifest.lastSeq;
    expect(await d.sql('SELECT id FROM audit_dictionary')).toEqual([]);
    // The online records that referenced those entries no longer expand to what was hashed: the first is named.
    const online = await d.sql<{ seq: number | string; event: string }>(
      'SELECT seq, event FROM audit_log WHERE seq > ? ORDER BY seq',
      [anchor],
    );
    const first = Number(online.find((r) => auditEventRefs(r.event).length > 0)!.seq);
    expect(await d.verifyDatabase()).toMatchObject({ ok: false, seq: first });
  });

  it('a middle checkpoint deleted fails verification (checkpoint-missing at its seq)', async () => {
    const d = await used(backend);
    await d.sql('DELETE FROM audit_checkpoints WHERE seq = ?', [20]);

    const s = await d.start();
    expect(s.node.sealed).toBe(false);
    const report = (await s.call({ method: 'GET', url: '/v1/audit/verify' })).json();
    expect(report).toMatchObject({ ok: false, seq: 20, problem: 'checkpoint-missing' });
    await s.stop();
  });

  it('the trailing checkpoints deleted are refused at start when the audit file holds them', async () => {
    const d = await used(backend);
    await d.sql('DELETE FROM audit_checkpoints WHERE seq > ?', [10]);

    const s = await d.start();
    await expectRefused(d, s, /holds a checkpoint at seq \d+ that the database lacks/);
  });

  it('without a file sink, the trailing checkpoints deleted are refused at start once more than one interval follows the last one', async () => {
    const d = await used(backend, { file: false });
    await d.sql('DELETE FROM audit_checkpoints WHERE seq > ?', [10]);
    expect(await d.verifyDatabase()).toMatchObject({ ok: false, seq: 21, problem: 'checkpoint-missing' });

    const s = await d.start();
    await expectRefused(d, s, /records follow the last checkpoint \(seq 10\); at most 10 may/);
  });

  it('the chain cut back to a checkpoint (records and checkpoints after it deleted) is refused at start when the audit file holds more', async () => {
    const d = await used(backend);
    await d.sql('DELETE FROM audit_log WHERE seq > ?', [20]);
    await d.sql('DELETE FROM audit_checkpoints WHERE seq > ?', [20]);

    const s = await d.start();
    await expectRefused(d, s, /holds a checkpoint at seq \d+ that the database lacks/);
  });

  it('the documented limit: with the database alone, a cut back to a checkpoint verifies (only another copy shows it)', async () => {
    const d = await used(backend, { file: false });
    await d.sql('DELETE FROM audit_log WHERE seq > ?', [20]);
    await d.sql('DELETE FROM audit_checkpoints WHERE seq > ?', [20]);
    expect(await d.verifyDatabase()).toMatchObject({ ok: true, lastSeq: 20, lastCheckpointSeq: 20 });
  });

  it('the audit signing key deleted while the log holds records is refused: custos makes no new key to sign with', async () => {
    const d = await used(backend);
    await d.sql('DELETE FROM entries WHERE namespace = ? AND key = ?', ['sys', 'audit.signing-key']);

    const s = await d.start();
    await expectRefused(d, s, /signing key is missing/);
    expect(await s.storage.entries.get('sys', 'audit.signing-key')).toBeUndefined();
  });

  it('a last checkpoint whose signature does not verify is refused at start', async () => {
    const d = await used(backend, { file: false });
    const [last] = await d.sql<{ seq: number | string }>('SELECT max(seq) AS seq FROM audit_checkpoints');
    await d.sql('UPDATE audit_checkpoints SET every = ? WHERE seq = ?', [1_000_000, Number(last!.seq)]);

    const s = await d.start();
    await expectRefused(d, s, /last checkpoint \(seq \d+\) does not verify/);
  });

  it('with the seal as well, a re-signed forged chain is refused at start when the audit file holds the real one', async () => {
    const d = await used(backend);
    await forgeWithSeal(d);
    const s = await d.start();
    await expectRefused(d, s, /the database's checkpoint at seq \d+ differs from the file sink's/);
  });

  it('the documented limit: with the seal and the database and no other copy, a re-signed forged chain verifies', async () => {
    const d = await used(backend, { file: false });
    await forgeWithSeal(d);
    const s = await d.start();
    expect(s.node.sealed).toBe(false);
    expect((await s.call({ method: 'GET', url: '/v1/audit/verify' })).json()).toMatchObject({ ok: true });
  });

  it('a deployment with legacy (v1) checkpoints upgrades, and stripping its chained checkpoints is refused at start', async () => {
    const d = await used(backend, { file: false });
    // As an earlier version left it: the same checkpoints, unchained (v1).
    await d.withSealedKey(async (storage, signer) => {
      const records = await storage.audit.range(1, 10_000);
      const seqs = await d.checkpointSeqs();
      await d.sql('DELETE FROM audit_checkpoints');
      for (const seq of seqs) await storage.audit.appendCheckpoint(signLegacyCheckpoint(signer, records[seq - 1]!));
    });
    const legacy = (await d.checkpointSeqs()).length;

    const s = await d.start();
    expect(s.node.sealed).toBe(false);
    await traffic(s, 15);
    const report = (await s.call({ method: 'GET', url: '/v1/audit/verify' })).json();
    expect(report).toMatchObject({ ok: true, legacyCheckpoints: legacy, interval: { every: EVERY } });
    await s.stop();

    // A downgrade: only the legacy checkpoints left, the chained ones deleted.
    await d.sql('DELETE FROM audit_checkpoints WHERE version = 2');
    expect(await d.verifyDatabase()).toMatchObject({ ok: false, problem: 'checkpoint-missing' });
    const again = await d.start();
    await expectRefused(d, again, /records follow the last checkpoint/);
  });
});

/** A legacy (v1) checkpoint, as custos signed them before checkpoints were chained. */
function signLegacyCheckpoint(signer: AuditSigner, at: { seq: number; hash: string; ts: string }): AuditCheckpoint {
  const unsigned = { version: 1 as const, seq: at.seq, hash: at.hash, ts: at.ts };
  const signature = sign(null, Buffer.from(auditCheckpointStatement(unsigned)), signer.privateKey).toString(
    'base64url',
  );
  return { ...unsigned, keyId: signer.keyId, signature };
}

/** Rewrites the chain from seq 5, deletes the checkpoints and signs a new chain over the forgery with the real key. */
async function forgeWithSeal(d: Deployment): Promise<void> {
  await d.rewriteChainFrom(5);
  await d.sql('DELETE FROM audit_checkpoints');
  await d.withSealedKey(async (storage, signer) => {
    const records = await storage.audit.range(1, 10_000);
    let prev = AUDIT_CHECKPOINT_GENESIS;
    for (let seq = EVERY; ; seq = Math.min(seq + EVERY, records.length)) {
      const cp: AuditCheckpoint = signAuditCheckpoint(signer, records[seq - 1]!, prev, {
        every: EVERY,
        intervalMs: 10_000,
      });
      await storage.audit.appendCheckpoint(cp);
      prev = auditCheckpointLink(cp);
      if (seq === records.length) break;
    }
  });
}

describe('the reported attack against `custos server` itself (default configuration)', () => {
  it('restarted on a rewritten chain with its checkpoints deleted, the server stays up and sealed, says why, and logs no event contents', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-audit-tamper-server-'));
    const logged = new PassThrough();
    let log = '';
    logged.on('data', (chunk) => {
      log += chunk;
    });
    try {
      const config = resolveServerConfig({ dev: true, data: dir, listen: '127.0.0.1:0' });
      const first = await startServer(config, pino({ level: 'silent' }));
      const token = readFileSync(join(dir, 'root-token'), 'utf8').trim();
      for (let i = 0; i < 5; i++) {
        const r = await fetch(`${first.address}/v1/secrets/data/kv/tamper/server-${i}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ data: { note: `fake-${i}` } }),
        });
        expect(r.status).toBe(200);
      }
      await first.close();

      const db = new Database(join(dir, 'custos.db'));
      // Compact events expanded with the dictionary, as an attacker with the code would.
      const dictionary = new Map(
        (db.prepare('SELECT id, value FROM audit_dictionary').all() as Array<{ id: string; value: string }>).map(
          (e) => [e.id, e.value],
        ),
      );
      const rows = (
        db.prepare('SELECT seq, event FROM audit_log ORDER BY seq').all() as Array<{ seq: number; event: string }>
      ).map((r) => ({ seq: r.seq, event: expandAuditEvent(r.event, (id) => dictionary.get(id)) }));
      let prev = '0'.repeat(64);
      for (const r of rows) {
        const event = r.seq === 3 ? denyEdit(r.event) : r.event;
        const hash = auditChainHash(prev, event);
        db.prepare('UPDATE audit_log SET event = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(
          event,
          prev,
          hash,
          r.seq,
        );
        prev = hash;
      }
      db.prepare('DELETE FROM audit_checkpoints').run();
      db.close();

      const second = await startServer(config, pino({ level: 'info' }, logged));
      try {
        const status = await fetch(`${second.address}/v1/sys/seal-status`);
        expect(await status.json()).toEqual({ initialized: true, sealed: true, type: 'dev', reason: INTEGRITY });
        const health = await fetch(`${second.address}/v1/sys/health`);
        expect(health.status).toBe(503);
        expect(await health.json()).toMatchObject({ sealed: true, degraded: true, problems: ['audit_integrity'] });
        const verify = await fetch(`${second.address}/v1/audit/verify`, {
          headers: { authorization: `Bearer ${token}` },
        });
        expect(verify.status).toBe(503);
      } finally {
        await second.close();
      }
      const db2 = new Database(join(dir, 'custos.db'));
      expect(db2.prepare('SELECT count(*) AS n FROM audit_checkpoints').get()).toEqual({ n: 0 });
      db2.close();
      const line = log.split('\n').find((l) => l.includes(INTEGRITY));
      expect(line).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ level: 50, code: INTEGRITY, detail: expect.stringMatching(/seq \d+/) });
      // Seqs only: no event contents, paths or tokens in the log.
      expect(log).not.toContain('kv/tamper');
      expect(log).not.toContain(token);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!backends.includes('postgres'))('audit tampering in PostgreSQL while the node runs', () => {
  it('deleting the trailing checkpoints under a running node makes it seal itself at its next checkpoint', async () => {
    const d = await deployment('postgres');
    const s = await d.start();
    await traffic(s, 8);
    const seqs = await d.checkpointSeqs();
    await d.sql('DELETE FROM audit_checkpoints WHERE seq = ?', [seqs.at(-1)!]);
    // Requests go on until the next checkpoint is due; that one finds its predecessor gone.
    for (let i = 0; i < 10 && !s.node.sealed; i++) await traffic(s, 1).catch(() => undefined);
    await expectRefused(d, s, /lost or changed the checkpoint/);
    expect(await d.checkpointSeqs()).toEqual(seqs.slice(0, -1));
  });

  it('deleting records a running node wrote makes it seal itself', async () => {
    const d = await deployment('postgres');
    const s = await d.start();
    await traffic(s, 8);
    const [head] = await d.sql<{ seq: string }>('SELECT max(seq) AS seq FROM audit_log');
    await d.sql('DELETE FROM audit_log WHERE seq > ?', [Number(head!.seq) - 3]);
    for (let i = 0; i < 3 && !s.node.sealed; i++) {
      await s.call({ method: 'PUT', url: '/v1/secrets/data/kv/tamper/x', payload: { data: { n: String(i) } } });
    }
    await expectRefused(d, s, /went back from seq|not the one this node/);
  });

  it('a record rewritten under a running node is never sealed: the node seals its own hash and verification shows the edit', async () => {
    const d = await deployment('postgres');
    const s = await d.start();
    await traffic(s, 6);
    const [head] = await d.sql<{ seq: string }>('SELECT max(seq) AS seq FROM audit_log');
    const seq = Number(head!.seq);
    const row = (await d.records()).find((r) => r.seq === seq)!;
    expect(row.event).toContain('"status":200');
    const event = row.event.replace('"status":200', '"status":403');
    await d.sql('UPDATE audit_log SET event = ?, prev_hash = ?, hash = ? WHERE seq = ?', [
      event,
      row.prev_hash,
      auditChainHash(row.prev_hash, event),
      seq,
    ]);
    await s.stop();
    expect(await d.verifyDatabase()).toMatchObject({ ok: false, seq, problem: 'checkpoint-mismatch' });
  });
});

describe('audit tampering with write access to the audit file', () => {
  /** The file's records with the checkpoint lines stripped and the chain re-made after an edit at `seq`. */
  function stripAndRechain(lines: string[], seq: number): string[] {
    let prev = '0'.repeat(64);
    return fileRecords(lines).map((r) => {
      const event = r.seq === seq ? denyEdit(r.event) : r.event;
      const hash = auditChainHash(prev, event);
      const line = formatAuditRecordLine({ ...r, event, prevHash: prev, hash });
      prev = hash;
      return line;
    });
  }

  it('stripping the checkpoint lines from audit.jsonl and re-chaining fails offline verification', async () => {
    const d = await used('sqlite');
    d.writeFileLines(stripAndRechain(d.fileLines(), 3));
    // The reported attack verified with "0 signed checkpoints".
    expect(await verifyAuditFile(d.auditFile, { publicKeys: d.publicKeys, defaultEvery: EVERY })).toMatchObject({
      ok: false,
      seq: 2 * EVERY + 1,
      problem: 'checkpoint-missing',
    });
  });

  it('stripping the checkpoint lines of a production-size file fails offline verification with the default interval', async () => {
    // Interval 1,000 (the default), 2,100 events: what `custos audit verify --file` checks.
    const d = await deployment('sqlite');
    d.audit.checkpointEvery = 1_000;
    const s = await d.start();
    const log = s.node.services().audit;
    for (let i = 0; i < 21; i++) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => log.record({ type: 'system', kind: `tamper_test_${i * 100 + j}` })),
      );
    }
    await s.stop();
    expect(await verifyAuditFile(d.auditFile, { publicKeys: d.publicKeys })).toMatchObject({ ok: true });
    d.writeFileLines(stripAndRechain(d.fileLines(), 3));
    expect(await verifyAuditFile(d.auditFile, { publicKeys: d.publicKeys })).toMatchObject({
      ok: false,
      seq: 2_001,
      problem: 'checkpoint-missing',
    });
  });

  it('an audit file edited at its end makes the node refuse to start: it disagrees with the database', async () => {
    const d = await used('sqlite');
    const lines = d.fileLines();
    const last = lines.findLastIndex((l) => {
      const kind = parseAuditFileLine(l)?.kind;
      return kind === 'record' || kind === 'compact';
    });
    const r = fileRecords(lines).at(-1)!;
    const event = r.event.replace('"status":200', '"status":403');
    expect(event).not.toBe(r.event);
    lines[last] = formatAuditRecordLine({ ...r, event, hash: auditChainHash(r.prevHash, event) });
    d.writeFileLines(lines);

    const s = await d.start();
    await expectRefused(d, s, /database chain and the file sink differ at seq/);
  });

  it('records added to the audit file that do not continue the database chain are refused, not imported', async () => {
    const d = await used('sqlite');
    const lines = d.fileLines();
    const r = fileRecords(lines).at(-1)!;
    const prevHash = 'c'.repeat(64);
    d.writeFileLines([
      ...lines,
      JSON.stringify({
        event: r.event,
        hash: auditChainHash(prevHash, r.event),
        kind: 'record',
        prevHash,
        seq: r.seq + 1,
        ts: r.ts,
      }),
    ]);

    const s = await d.start();
    await expectRefused(d, s, /do not continue the database chain/);
  });

  it('an emptied (or rotated) audit file does not stop the node: the database is the authority and the file starts again at its head', async () => {
    const d = await used('sqlite');
    d.writeFileLines([]);
    const s = await d.start();
    expect(s.node.sealed).toBe(false);
    await traffic(s, 2);
    await s.stop();
    expect(await verifyAuditFile(d.auditFile, { publicKeys: d.publicKeys, partial: true })).toMatchObject({ ok: true });
  });
});

describe.each(backends)('audit tampering with write access to both the database and the audit file (%s)', (backend) => {
  it('rewriting both the same way and deleting every checkpoint is still refused at start and fails offline verification', async () => {
    const d = await used(backend);
    await d.rewriteChainFrom(5);
    await d.sql('DELETE FROM audit_checkpoints');
    const records = await d.records();
    expect(fileRecords(d.fileLines())).toHaveLength(records.length);
    d.writeFileLines(
      records.map((r) =>
        formatAuditRecordLine({ seq: r.seq, ts: r.ts, prevHash: r.prev_hash, hash: r.hash, event: r.event }),
      ),
    );
    expect(await verifyAuditFile(d.auditFile, { publicKeys: d.publicKeys, defaultEvery: EVERY })).toMatchObject({
      ok: false,
      problem: 'checkpoint-missing',
    });
    const s = await d.start();
    await expectRefused(d, s, /records follow the last checkpoint \(seq 0\)/);
  });
});
