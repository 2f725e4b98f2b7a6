import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftHsm, type SoftHsmToken, softHsmAvailable } from '../../seals/src/test-support/softhsm.js';

// `custos server` as an operator runs it (the built CLI in its own process,
// the PIN in the environment), auto-unsealing from a SoftHSM2 token.

const run = softHsmAvailable() || process.env.CI === 'true';
const bin = join(import.meta.dirname, '../bin/custos.js');
const PIN_ENV = 'CUSTOS_HSM_PIN';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Runs `custos server ARGS` until it listens (then stops it with SIGTERM) or exits; returns all it printed. */
function serve(args: string[], env: NodeJS.ProcessEnv, onListening?: () => Promise<void>) {
  return new Promise<{ output: string; code: number | null }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'server', '--log-format', 'json', ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let started = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!started && output.includes('custos listening')) {
        started = true;
        (onListening ?? (async () => {}))().then(
          () => child.kill('SIGTERM'),
          (e) => {
            child.kill('SIGTERM');
            reject(e);
          },
        );
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ output, code });
    });
  });
}

describe.runIf(run)('custos server with the pkcs11 seal, as a process', () => {
  let hsm: SoftHsm;
  let token: SoftHsmToken;
  let dir: string;
  let config: string;

  beforeAll(async () => {
    hsm = await SoftHsm.start();
    token = await hsm.initToken('proc-token');
    dir = mkdtempSync(join(tmpdir(), 'custos-seal-proc-'));
    config = join(dir, 'custos.json');
    const port = await freePort();
    const seal = {
      type: 'pkcs11',
      library: hsm.library,
      token_label: 'proc-token',
      pin_env: PIN_ENV,
      key_label: 'proc-root',
    };
    writeFileSync(config, JSON.stringify({ data_dir: dir, listen: `127.0.0.1:${port}`, seal }));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await hsm?.cleanup();
  });

  it('initialises and auto-unseals from the token, and the PIN is in none of its output', async () => {
    const env = hsm.env({ [PIN_ENV]: token.pin });
    let status: unknown;
    const first = await serve(['--config', config, '--create-seal-key'], env, async () => {
      const address = JSON.parse(readFileSync(config, 'utf8')).listen as string;
      status = await (await fetch(`http://${address}/v1/sys/seal-status`)).json();
    });
    expect(status).toMatchObject({ initialized: true, sealed: false, type: 'wrapped', wrapper: 'pkcs11' });
    expect(first.output).toContain('initialised with the wrapped seal');
    expect(first.output).not.toContain(token.pin);

    const second = await serve(['--config', config], env, async () => {});
    expect(second.output).toContain('custos listening');
    expect(second.output).not.toContain(token.pin);
  }, 60_000);

  it('a wrong PIN stops the start with CUSTOS_ERR_SEAL_ACCESS_DENIED, without printing it', async () => {
    const wrong = `wrong-${randomBytes(5).toString('hex')}`;
    const result = await serve(['--config', config], hsm.env({ [PIN_ENV]: wrong }));
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('CUSTOS_ERR_SEAL_ACCESS_DENIED');
    expect(result.output).not.toContain(wrong);
    expect(result.output).not.toContain(token.pin);
  }, 60_000);
});
