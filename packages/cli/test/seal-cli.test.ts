import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerConfig, startServer } from '@custos/server';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftHsm, softHsmAvailable } from '../../seals/src/test-support/softhsm.js';
import { runCliCaptured } from './cli-harness.js';

// With CI=true SoftHSM2 must be there (.ci/run installs it): no skipping.
const run = softHsmAvailable() || process.env.CI === 'true';
const PIN_ENV = 'CUSTOS_CLI_SEAL_PIN';

describe.runIf(run)('custos operator rotate-seal and status with the pkcs11 seal (SoftHSM2)', () => {
  let hsm: SoftHsm;
  let dir: string;
  let pin: string;

  beforeAll(async () => {
    hsm = await SoftHsm.start();
    const token = await hsm.initToken('cli-token');
    pin = token.pin;
    process.env[PIN_ENV] = pin;
    dir = mkdtempSync(join(tmpdir(), 'custos-cli-seal-'));
    const seal = {
      type: 'pkcs11',
      library: hsm.library,
      token_label: 'cli-token',
      pin_env: PIN_ENV,
      key_label: 'cli-a',
    };
    writeFileSync(join(dir, 'custos.json'), JSON.stringify({ data_dir: dir, listen: '127.0.0.1:0', seal }));
  });
  afterAll(async () => {
    delete process.env[PIN_ENV];
    rmSync(dir, { recursive: true, force: true });
    await hsm?.cleanup();
  });

  it('rotates the seal key from the CLI, says what to do next, and never prints the PIN', async () => {
    const config = resolveServerConfig({ config: join(dir, 'custos.json'), createSealKey: true }, dir);
    const server = await startServer(config, pino({ level: 'silent' }));
    try {
      const env = { CUSTOS_ADDR: server.address, CUSTOS_TOKEN: readFileSync(join(dir, 'root-token'), 'utf8').trim() };
      const status = await runCliCaptured(['operator', 'status'], { cwd: dir, env });
      expect(status.code).toBe(0);
      expect(status.stdout).toContain('pkcs11 (auto-unseal)');
      const rotated = await runCliCaptured(['operator', 'rotate-seal', '--key', 'cli-b', '--create-key'], {
        cwd: dir,
        env,
      });
      expect(rotated.code, rotated.stderr).toBe(0);
      expect(rotated.stdout).toContain('generation 2');
      expect(rotated.stdout).toContain('cli-b');
      expect(rotated.stdout).toContain('switch the server config');
      const missing = await runCliCaptured(['operator', 'rotate-seal', '--key', 'cli-missing'], { cwd: dir, env });
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain('CUSTOS_ERR_SEAL_KEY_NOT_FOUND');
      for (const out of [status, rotated, missing]) expect(out.stdout + out.stderr).not.toContain(pin);
    } finally {
      await server.close();
    }
  }, 60_000);
});
