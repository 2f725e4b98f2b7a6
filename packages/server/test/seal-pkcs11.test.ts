import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { AuditFileLineReader, parseAuditFileLine } from '@custos/core';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftHsm, type SoftHsmToken, softHsmAvailable } from '../../seals/src/test-support/softhsm.js';
import { resolveServerConfig } from '../src/server-config.js';
import { type RunningServer, startServer } from '../src/start-server.js';

// With CI=true SoftHSM2 must be there (.ci/run installs it): no skipping.
const run = softHsmAvailable() || process.env.CI === 'true';
const PIN_ENV = 'CUSTOS_TEST_SEAL_PIN';

/** A logger whose every line is kept, to check that no PIN is ever logged. */
function capturingLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/**
 * The `system` audit events in a data directory's audit file, read as custos
 * reads it: the file holds compact lines and dictionary entries, which the
 * core's line reader expands back to full events.
 */
function systemEvents(dir: string): { kind: string; details?: Record<string, unknown> }[] {
  const reader = new AuditFileLineReader();
  const events: { type: string; kind: string; details?: Record<string, unknown> }[] = [];
  for (const text of readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n')) {
    const parsed = parseAuditFileLine(text);
    const line = parsed ? reader.read(parsed) : undefined;
    if (line?.kind === 'record') events.push(JSON.parse(line.record.event));
  }
  return events.filter((event) => event.type === 'system');
}

async function until(what: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out');
}

describe.runIf(run)('the pkcs11 seal, end to end against SoftHSM2', () => {
  let hsm: SoftHsm;
  let token: SoftHsmToken;
  const dirs: string[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    hsm = await SoftHsm.start();
    token = await hsm.initToken();
    process.env[PIN_ENV] = token.pin;
  });
  afterAll(async () => {
    delete process.env[PIN_ENV];
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    // Not one log line of any server in this file carries the PIN.
    expect(logs.join('')).not.toContain(token.pin);
    await hsm?.cleanup();
  });

  function dataDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'custos-pkcs11-'));
    dirs.push(dir);
    return dir;
  }

  function pkcs11Config(dir: string, keyLabel: string, extra: Record<string, unknown> = {}): string {
    const file = join(dir, `config-${keyLabel}.json`);
    const seal = {
      type: 'pkcs11',
      library: hsm.library,
      token_label: token.label,
      pin_env: PIN_ENV,
      key_label: keyLabel,
      health_interval: '500ms',
      ...extra,
    };
    writeFileSync(file, JSON.stringify({ data_dir: dir, listen: '127.0.0.1:0', seal }));
    return file;
  }

  async function start(config: string, flags: { migrateSeal?: boolean; createSealKey?: boolean } = {}) {
    const { logger, lines } = capturingLogger();
    const resolved = resolveServerConfig({ config, ...flags }, tmpdir());
    try {
      return await startServer(resolved, logger);
    } finally {
      logs.push(...lines);
    }
  }

  function client(server: RunningServer, rootToken: string) {
    return async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${server.address}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${rootToken}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, json: text ? JSON.parse(text) : undefined, text };
    };
  }

  it('initialises on first start (--create-seal-key), auto-unseals at the next, and keeps the data', async () => {
    const dir = dataDir();
    const config = pkcs11Config(dir, 'root-a');
    const first = await start(config, { createSealKey: true });
    const rootToken = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    try {
      const call = client(first, rootToken);
      expect((await call('PUT', '/v1/secrets/data/kv/app/db', { data: { password: 'fake-pw-1' } })).status).toBe(200);
      const status = (await call('GET', '/v1/sys/seal-status')).json;
      expect(status).toMatchObject({ initialized: true, sealed: false, type: 'wrapped', wrapper: 'pkcs11' });
      // Key labels are not in the public status.
      expect(JSON.stringify(status)).not.toContain('root-a');
    } finally {
      await first.close();
    }
    const second = await start(config);
    try {
      const read = await client(second, rootToken)('GET', '/v1/secrets/data/kv/app/db');
      expect(read.json.data).toEqual({ password: 'fake-pw-1' });
    } finally {
      await second.close();
    }
  }, 60_000);

  it('faults at start: wrong PIN, library missing, key absent — each a clear code, no PIN in the error', async () => {
    const dir = dataDir();
    const wrongPin = `wrong-${randomBytes(5).toString('hex')}`;
    process.env[PIN_ENV] = wrongPin;
    try {
      const error = await start(pkcs11Config(dir, 'root-a')).catch(
        (e: unknown) => e as { code: string; message: string },
      );
      expect(error).toMatchObject({ code: 'CUSTOS_ERR_SEAL_ACCESS_DENIED' });
      expect(JSON.stringify(error) + String((error as Error).stack)).not.toContain(wrongPin);
    } finally {
      process.env[PIN_ENV] = token.pin;
    }
    await expect(start(pkcs11Config(dir, 'root-a', { library: join(dir, 'libmissing.so') }))).rejects.toMatchObject({
      code: 'CUSTOS_ERR_HSM_LIBRARY',
    });
    await expect(start(pkcs11Config(dir, 'never-created'))).rejects.toMatchObject({
      code: 'CUSTOS_ERR_SEAL_KEY_NOT_FOUND',
    });
  }, 60_000);

  it('token removed while running: custos seals itself, refuses with a reason, audits it, and unseals when it is back', async () => {
    const dir = dataDir();
    const server = await start(pkcs11Config(dir, 'root-fault'), { createSealKey: true });
    const rootToken = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    const call = client(server, rootToken);
    try {
      await call('PUT', '/v1/secrets/data/kv/app/x', { data: { v: 'fake-1' } });
      await hsm.removeTokens();
      try {
        await until(async () => server.node.sealed);
        const refused = await call('GET', '/v1/secrets/data/kv/app/x');
        expect(refused.status).toBe(503);
        expect(['CUSTOS_ERR_SEAL_UNAVAILABLE', 'CUSTOS_ERR_HSM_TOKEN_NOT_FOUND']).toContain(refused.json.error.code);
        const status = (await call('GET', '/v1/sys/seal-status')).json;
        expect(status.sealed).toBe(true);
        expect(status.reason).toBe(refused.json.error.code);
        const health = await fetch(`${server.address}/v1/sys/health`);
        expect(health.status).toBe(503);
        expect((await health.json()).problems).toEqual(['seal_unavailable']);
      } finally {
        await hsm.restoreTokens();
      }
      await until(async () => !server.node.sealed);
      const back = await call('GET', '/v1/secrets/data/kv/app/x');
      expect(back.json.data).toEqual({ v: 'fake-1' });
    } finally {
      await server.close();
    }
    const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8');
    const kinds = systemEvents(dir).map((event) => event.kind);
    expect(kinds).toContain('seal_key_unavailable');
    expect(kinds).toContain('seal_key_restored');
    expect(audit).not.toContain(token.pin);
  }, 60_000);

  it('a node an operator sealed stays sealed: the health check never unseals it', async () => {
    const dir = dataDir();
    const server = await start(pkcs11Config(dir, 'root-manual'), { createSealKey: true });
    const rootToken = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    try {
      const call = client(server, rootToken);
      expect((await call('POST', '/v1/sys/seal')).status).toBe(204);
      // Several health intervals (500ms) pass with the HSM healthy.
      await new Promise((r) => setTimeout(r, 1_600));
      expect(server.node.sealed).toBe(true);
      const refused = await call('GET', '/v1/secrets/data/kv/app/x');
      expect(refused.json.error.code).toBe('CUSTOS_ERR_SEALED');
    } finally {
      await server.close();
    }
  }, 60_000);

  it('rotate-seal: re-wraps under a new key with no downtime; the old wrapping is retired once the config switched', async () => {
    const dir = dataDir();
    const oldConfig = pkcs11Config(dir, 'rot-old');
    const server = await start(oldConfig, { createSealKey: true });
    const rootToken = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    try {
      const call = client(server, rootToken);
      await call('PUT', '/v1/secrets/data/kv/app/r', { data: { v: 'fake-r' } });
      const rotated = await call('POST', '/v1/sys/seal/rotate', { key: 'rot-new', create_key: true });
      expect(rotated.status).toBe(200);
      expect(rotated.json).toEqual({
        generation: 2,
        seal_key: { token_label: token.label, key_label: 'rot-new', mechanism: 'aes-gcm' },
      });
      // No downtime: still unsealed and serving.
      expect((await call('GET', '/v1/secrets/data/kv/app/r')).json.data).toEqual({ v: 'fake-r' });
      // A label that does not exist (and is not to be created) is refused, nothing written.
      expect((await call('POST', '/v1/sys/seal/rotate', { key: 'no-such-key' })).json.error.code).toBe(
        'CUSTOS_ERR_SEAL_KEY_NOT_FOUND',
      );
    } finally {
      await server.close();
    }
    expect(systemEvents(dir).find((e) => e.kind === 'seal_rotated')?.details).toEqual({
      generation: 2,
      seal_key: { token_label: token.label, key_label: 'rot-new', mechanism: 'aes-gcm' },
    });
    // Crash-safe: the old config still unseals (the operator has not switched yet)…
    const stillOld = await start(oldConfig);
    await stillOld.close();
    // …the switched config unseals and retires the old wrapping…
    const switched = await start(pkcs11Config(dir, 'rot-new'));
    await switched.close();
    // …after which the old key no longer opens anything.
    await expect(start(oldConfig)).rejects.toMatchObject({ code: 'CUSTOS_ERR_SEAL_KEY_MISMATCH' });
  }, 60_000);

  it('migrates dev → pkcs11 with --migrate-seal (the dev key file read once); without it the start is refused', async () => {
    const dir = dataDir();
    const devServer = await startServer(
      resolveServerConfig({ dev: true, data: dir, listen: '127.0.0.1:0' }, dir),
      pino({ level: 'silent' }),
    );
    const rootToken = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    await client(devServer, rootToken)('PUT', '/v1/secrets/data/kv/app/m', { data: { v: 'fake-m' } });
    await devServer.close();

    const config = pkcs11Config(dir, 'mig-dev');
    await expect(start(config, { createSealKey: true })).rejects.toMatchObject({
      code: 'CUSTOS_ERR_SEAL_MIGRATION_REQUIRED',
    });
    const migrated = await start(config, { migrateSeal: true });
    try {
      const call = client(migrated, rootToken);
      expect((await call('GET', '/v1/sys/seal-status')).json).toMatchObject({ type: 'wrapped', sealed: false });
      expect((await call('GET', '/v1/secrets/data/kv/app/m')).json.data).toEqual({ v: 'fake-m' });
    } finally {
      await migrated.close();
    }
    const again = await start(config);
    await again.close();
    expect(systemEvents(dir).find((e) => e.kind === 'seal_migrated')?.details).toMatchObject({
      from: 'dev',
      to: 'pkcs11',
    });
  }, 60_000);

  it('migrates shamir → pkcs11: sealed until a threshold of the old shares is presented once', async () => {
    const dir = dataDir();
    const shamirConfig = join(dir, 'shamir.json');
    writeFileSync(shamirConfig, JSON.stringify({ data_dir: dir, listen: '127.0.0.1:0', seal: 'shamir' }));
    const shamir = await start(shamirConfig);
    const init = await client(shamir, '')('POST', '/v1/sys/init', { shares: 3, threshold: 2 });
    const { shares, root_token: rootToken } = init.json as { shares: string[]; root_token: string };
    const call = client(shamir, rootToken);
    for (const key of shares.slice(0, 2)) await call('POST', '/v1/sys/unseal', { key });
    await call('PUT', '/v1/secrets/data/kv/app/s', { data: { v: 'fake-s' } });
    await shamir.close();

    const config = pkcs11Config(dir, 'mig-shamir');
    await expect(start(config, { createSealKey: true })).rejects.toMatchObject({
      code: 'CUSTOS_ERR_SEAL_MIGRATION_REQUIRED',
    });
    const migrating = await start(config, { migrateSeal: true });
    try {
      const mcall = client(migrating, rootToken);
      expect((await mcall('GET', '/v1/sys/seal-status')).json).toMatchObject({ type: 'shamir', sealed: true });
      await mcall('POST', '/v1/sys/unseal', { key: shares[2] });
      await mcall('POST', '/v1/sys/unseal', { key: shares[0] });
      expect((await mcall('GET', '/v1/sys/seal-status')).json).toMatchObject({ type: 'wrapped', sealed: false });
      expect((await mcall('GET', '/v1/secrets/data/kv/app/s')).json.data).toEqual({ v: 'fake-s' });
    } finally {
      await migrating.close();
    }
    expect(systemEvents(dir).find((e) => e.kind === 'seal_migrated')?.details).toMatchObject({
      from: 'shamir',
      to: 'pkcs11',
      seal_key: { key_label: 'mig-shamir' },
    });
    // Auto-unseals from now on; the Shamir shares are no longer asked for.
    const after = await start(config);
    try {
      expect(after.node.sealed).toBe(false);
    } finally {
      await after.close();
    }
  }, 90_000);
});
