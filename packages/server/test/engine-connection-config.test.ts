import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CertificateAuthority,
  type Cipher,
  CustosError,
  EgressPolicy,
  EngineService,
  type Storage,
  sealJson,
} from '@custos/core';
import { createEngine } from '@custos/engines';
import { createStorage } from '@custos/storage';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, hasPostgres, type TestDatabase } from '../../../test-support/postgres.js';
import { startPostgresTlsRelay, throughRelay } from '../../../test-support/postgres-tls-relay.js';

/** Pass-through: these tests are about what is stored and opened, not encryption (the barrier has its own). */
const plainCipher: Cipher = {
  sealed: false,
  encrypt: (_aad, plaintext) => plaintext.slice(),
  decrypt: (_aad, blob) => blob.slice(),
  decryptAsync: async (_aad, blob) => blob.slice(),
};

const codeOf = async (p: Promise<unknown>): Promise<CustosError> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CustosError);
  return e as CustosError;
};

describe.skipIf(!hasPostgres())('engine connection configuration: URL parameters and the TLS CA', () => {
  let dir: string;
  let storage: Storage;
  let engines: EngineService;
  let target: TestDatabase;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custos-engine-config-'));
    storage = createStorage(`sqlite:${join(dir, 'custos.db')}`);
    await storage.migrate();
    engines = new EngineService({
      storage,
      cipher: plainCipher,
      factory: createEngine,
      egress: new EgressPolicy({ allow: ['127.0.0.1'] }),
    });
    target = await createTestDatabase();
  });
  afterAll(async () => {
    await engines?.close();
    await storage?.close();
    await target?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes an engine record as an older custos stored it: its URL never went through the parameter check. */
  const plantLegacy = async (name: string, url: string) => {
    const time = new Date().toISOString();
    const record = {
      name,
      type: 'postgres',
      url,
      rotatable_users: [],
      created_time: time,
      updated_time: time,
      root_rotated_time: null,
    };
    await storage.entries.put('engine', name, sealJson(plainCipher, 'engine', name, record));
  };

  it('an engine stored with a now-refused parameter is not opened: a clear error names it, and nothing reaches the driver', async () => {
    const log = vi.spyOn(console, 'log');
    try {
      for (const [name, query] of [
        ['legacy-file', 'sslrootcert=/nonexistent/custos-test/ca.pem'],
        ['legacy-user', 'user=postgres'],
      ] as const) {
        const url = new URL(target.url);
        url.search = query;
        await plantLegacy(name, url.toString());
        const error = await codeOf(engines.open(name));
        expect(error.code).toBe('CUSTOS_ERR_ENGINE_UNAVAILABLE');
        expect(error.message).toContain(`"${query.split('=')[0]}"`);
        expect(error.message).toContain(`custos engine add ${name}`);
        expect(error.message).not.toContain(target.url);
      }
      expect(log).not.toHaveBeenCalled();
    } finally {
      log.mockRestore();
    }
  });

  it('a `?user=` that would connect as someone else than the URL’s user (past the admin check) is refused', async () => {
    const url = new URL(target.url);
    url.username = 'someone_else';
    url.search = 'user=postgres';
    const error = await codeOf(
      engines.write('sneaky', { type: 'postgres', url: url.toString(), rotatable_users: ['postgres'] }),
    );
    expect(error.code).toBe('CUSTOS_ERR_ENGINE_URL_REFUSED');
    expect(await engines.list()).not.toContain('sneaky');
  });

  it('the allowed parameters reach the driver: application_name shows on custos’s sessions', async () => {
    const appName = `custos-test-${Math.random().toString(36).slice(2, 8)}`;
    const url = new URL(target.url);
    url.search = `sslmode=disable&connect_timeout=5&application_name=${appName}`;
    await engines.write('allowed', { type: 'postgres', url: url.toString() });
    const engine = await engines.open('allowed');
    await engine.verifyConnection();
    const admin = new pg.Client({ connectionString: target.url });
    await admin.connect();
    try {
      const { rows } = await admin.query(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [appName],
      );
      expect(rows[0].n).toBeGreaterThan(0);
    } finally {
      await admin.end();
    }
  });

  it('tls_ca: PEM certificates only (no path, no key); with a CA, TLS is required', async () => {
    const ca = await CertificateAuthority.create({ trustDomain: 'engine-config.test' });
    const issued = await ca.issueServerCertificate();
    const url = new URL(target.url);
    url.search = 'sslmode=disable';
    for (const bad of [
      '/etc/ssl/certs/ca-certificates.crt',
      issued.keyPem,
      `${ca.certPem}\n${issued.keyPem}`,
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    ]) {
      const error = await codeOf(engines.write('with-ca', { type: 'postgres', url: target.url, tls_ca: bad }));
      expect(error.code).toBe('CUSTOS_ERR_VALIDATION');
      expect(error.message).not.toContain('PRIVATE');
    }
    // A CA and sslmode=disable contradict each other.
    expect(
      (await codeOf(engines.write('with-ca', { type: 'postgres', url: url.toString(), tls_ca: ca.certPem }))).code,
    ).toBe('CUSTOS_ERR_VALIDATION');
    expect(await engines.list()).not.toContain('with-ca');
    // The test cluster has no TLS: with a CA, TLS is required, so the connection is refused — and nothing stored.
    const noTls = await codeOf(engines.write('with-ca', { type: 'postgres', url: target.url, tls_ca: ca.certPem }));
    expect(noTls.code).toBe('CUSTOS_ERR_ENGINE_UNAVAILABLE');
    expect(await engines.list()).not.toContain('with-ca');
  });

  it('tls_ca: an engine behind TLS is stored with its CA, reopened from storage with it, and mints logins over verify-full', async () => {
    const ca = await CertificateAuthority.create({ trustDomain: 'engine-config-e2e.test' });
    const leaf = await ca.issueServerCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const relay = await startPostgresTlsRelay(leaf.keyPem, leaf.certPem, new URL(target.url));
    const reopened = new EngineService({
      storage,
      cipher: plainCipher,
      factory: createEngine,
      egress: new EgressPolicy({ allow: ['127.0.0.1'] }),
    });
    try {
      const url = throughRelay(target.url, relay, 'sslmode=verify-full&connect_timeout=5');
      await engines.write('behind-tls', { type: 'postgres', url, tls_ca: ca.certPem });
      expect(await engines.list()).toContain('behind-tls');
      // Another service on the same storage (a restart): the CA comes back from the stored record.
      const before = relay.sessions();
      const engine = await reopened.open('behind-tls');
      const role = {
        name: 'reader',
        creationStatements: [],
        revocationStatements: [],
        defaultTtlMs: 60_000,
        maxTtlMs: 600_000,
      };
      const cred = await engine.createCredential(role, {
        expiresAt: new Date(Date.now() + 60_000),
        usernamePrefix: 'tlscfg',
      });
      expect(relay.sessions()).toBeGreaterThan(before);
      const login = new pg.Client({
        connectionString: Object.assign(new URL(target.url), {
          username: cred.username,
          password: cred.password,
        }).toString(),
      });
      await login.connect();
      expect((await login.query('SELECT current_user AS u')).rows[0].u).toBe(cred.username);
      await login.end();
      await engine.revokeCredential(role, cred.username);
    } finally {
      await engines.delete('behind-tls').catch(() => undefined);
      await reopened.close();
      await relay.close();
    }
  });
});
