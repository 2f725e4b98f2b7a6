import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage } from '@custos/storage';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftHsm, type SoftHsmToken, softHsmAvailable } from '../../../seals/src/test-support/softhsm.js';
import { resolveServerConfig } from '../../src/server-config.js';
import { startServer } from '../../src/start-server.js';
import { startTestServer, type TestServer } from '../test-server.js';
import { type WriteLog, watchWrites } from './adversarial-support.js';

// Attack class: taking over or breaking the root of trust of a wrapped seal.
//
// - rotate-seal re-wraps the root key: only an operator with admin on
//   sys/seal may ask, never a task (whatever its policies), never anonymous;
//   the body can name a key label and nothing that redirects the root key
//   (no library, slot, PIN or key material);
// - the wrapped root key sits in untrusted storage: a tampered blob, a
//   swapped key label or a blob moved to another row must fail closed.

const SEAL_ADMIN = 'permit(principal, action == Custos::Action::"admin", resource in Custos::Path::"sys/seal");';
const EVERYTHING = 'permit(principal, action, resource);';
const READ_KV = 'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/");';

describe('rotate-seal cannot be called by the wrong caller', () => {
  let s: TestServer;
  let writes: WriteLog;
  const ok = async (response: Awaited<ReturnType<TestServer['call']>>) => {
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };
  const operatorToken = async (policy: string) =>
    (
      await ok(
        await s.call({ method: 'POST', url: '/v1/auth/token/create', payload: { policies: [policy], ttl: '10m' } }),
      )
    ).token as string;
  const rotate = (payload: unknown, token?: string | null) =>
    s.call({
      method: 'POST',
      url: '/v1/sys/seal/rotate',
      payload: payload as object,
      ...(token !== undefined ? { token } : {}),
    });

  beforeAll(async () => {
    const watch = watchWrites();
    writes = watch.log;
    s = await startTestServer('sqlite', { wrapStorage: watch.wrap });
    for (const [name, text] of [
      ['seal-admin', SEAL_ADMIN],
      ['everything', EVERYTHING],
      ['read-kv', READ_KV],
    ]) {
      await ok(await s.call({ method: 'PUT', url: `/v1/policies/${name}`, payload: { policy: text } }));
    }
    await ok(
      await s.call({ method: 'PUT', url: '/v1/roles/greedy', payload: { policies: ['everything'], max_ttl: '15m' } }),
    );
  });
  afterAll(async () => {
    await s?.close();
  });

  it('refuses it without a token, to a task that may do everything, and to an operator without admin on sys/seal', async () => {
    const task = await ok(await s.call({ method: 'POST', url: '/v1/roles/greedy/tasks', payload: { ttl: '5m' } }));
    const reader = await operatorToken('read-kv');
    const changed = await writes.during(async () => {
      expect((await rotate({ key: 'attacker-key', create_key: true }, null)).statusCode).toBe(401);
      const byTask = await rotate({ key: 'attacker-key', create_key: true }, task.token);
      expect(byTask.statusCode).toBe(403);
      expect(byTask.json().error.code).toBe('CUSTOS_ERR_PERMISSION_DENIED');
      expect((await rotate({ key: 'attacker-key' }, reader)).statusCode).toBe(403);
    });
    expect(changed.filter((w) => w.includes('seal'))).toEqual([]);
  });

  it('an operator with admin on sys/seal reaches it, but a dev-seal node has nothing to rotate (CUSTOS_ERR_SEAL_UNSUPPORTED)', async () => {
    const admin = await operatorToken('seal-admin');
    const changed = await writes.during(async () => {
      const response = await rotate({ key: 'new-label' }, admin);
      expect(response.statusCode).toBe(400);
      expect(response.json().error.code).toBe('CUSTOS_ERR_SEAL_UNSUPPORTED');
    });
    expect(changed.filter((w) => w.includes('seal'))).toEqual([]);
  });

  it('the body can name a key and nothing else: a library, a PIN or a slot are refused, not ignored', async () => {
    for (const extra of [{ library: '/tmp/evil.so' }, { pin: '1234' }, { slot: 0 }, { key_material: 'AAAA' }]) {
      const response = await rotate({ key: 'k', ...extra });
      expect(response.statusCode, JSON.stringify(extra)).toBe(400);
    }
    for (const key of ['', 'x'.repeat(129), 'bad\nlabel', 'bad\u0000label']) {
      expect((await rotate({ key })).statusCode, JSON.stringify(key)).toBe(400);
    }
  });
});

const run = softHsmAvailable() || process.env.CI === 'true';
const PIN_ENV = 'CUSTOS_ADV_SEAL_PIN';

describe.runIf(run)('a tampered wrapped root key fails closed (SoftHSM2)', () => {
  let hsm: SoftHsm;
  let token: SoftHsmToken;
  let dir: string;
  let config: string;

  const configFor = (keyLabel: string) => {
    const file = join(dir, `config-${keyLabel}.json`);
    const seal = {
      type: 'pkcs11',
      library: hsm.library,
      token_label: token.label,
      pin_env: PIN_ENV,
      key_label: keyLabel,
    };
    writeFileSync(file, JSON.stringify({ data_dir: dir, listen: '127.0.0.1:0', seal }));
    return file;
  };
  const start = (file: string, flags: { createSealKey?: boolean } = {}) =>
    startServer(resolveServerConfig({ config: file, ...flags }, dir), pino({ level: 'silent' }));

  /** Edits the one stored wrapping (the server is stopped). */
  async function editWrapping(edit: (row: { key: Record<string, string>; blob: string }) => object) {
    const storage = createStorage(`sqlite:${join(dir, 'custos.db')}`);
    await storage.migrate();
    try {
      const [rowKey] = await storage.entries.list('sys', 'seal-wrapped/', { limit: 10 });
      const entry = await storage.entries.get('sys', rowKey!);
      const row = JSON.parse(Buffer.from(entry!.value).toString('utf8'));
      const original = Buffer.from(entry!.value);
      await storage.entries.put('sys', rowKey!, Buffer.from(JSON.stringify(edit(row))));
      return async () => {
        const again = createStorage(`sqlite:${join(dir, 'custos.db')}`);
        await again.migrate();
        await again.entries.put('sys', rowKey!, original);
        await again.close();
      };
    } finally {
      await storage.close();
    }
  }

  beforeAll(async () => {
    hsm = await SoftHsm.start();
    token = await hsm.initToken();
    process.env[PIN_ENV] = token.pin;
    dir = mkdtempSync(join(tmpdir(), 'custos-adv-seal-'));
    config = configFor('adv-root');
    const first = await start(config, { createSealKey: true });
    await first.close();
    // A second key on the same token, as an attacker with HSM access might use.
    await hsm.createKey(token, 'adv-other');
  }, 60_000);
  afterAll(async () => {
    delete process.env[PIN_ENV];
    rmSync(dir, { recursive: true, force: true });
    await hsm?.cleanup();
  });

  it('a flipped bit in the wrapped blob: CUSTOS_ERR_UNSEAL_FAILED, the node does not start unsealed', async () => {
    const restore = await editWrapping((row) => {
      const blob = Buffer.from(row.blob, 'base64');
      blob[blob.length - 5]! ^= 0x40;
      return { ...row, blob: blob.toString('base64') };
    });
    await expect(start(config)).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNSEAL_FAILED' });
    await restore();
    await (await start(config)).close();
  }, 60_000);

  it('the stored key label swapped to another key of the token (and the config pointed at it): fails closed', async () => {
    const restore = await editWrapping((row) => ({ ...row, key: { ...row.key, key_label: 'adv-other' } }));
    await expect(start(configFor('adv-other'))).rejects.toMatchObject({ code: 'CUSTOS_ERR_UNSEAL_FAILED' });
    // And the real key no longer finds a wrapping described as its own.
    await expect(start(config)).rejects.toMatchObject({ code: 'CUSTOS_ERR_SEAL_KEY_MISMATCH' });
    await restore();
    await (await start(config)).close();
  }, 60_000);

  it('a malformed wrapping row: CUSTOS_ERR_INTEGRITY, nothing trusted', async () => {
    const restore = await editWrapping(() => ({ version: 1, key: 'not-an-object', blob: '!!' }));
    await expect(start(config)).rejects.toMatchObject({ code: 'CUSTOS_ERR_INTEGRITY' });
    await restore();
    const root = readFileSync(join(dir, 'root-token'), 'utf8').trim();
    const server = await start(config);
    try {
      const status = await fetch(`${server.address}/v1/sys/seal-status`, {
        headers: { authorization: `Bearer ${root}` },
      });
      expect(await status.json()).toMatchObject({ sealed: false, wrapper: 'pkcs11' });
    } finally {
      await server.close();
    }
  }, 60_000);
});
