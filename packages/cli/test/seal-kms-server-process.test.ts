import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsChildEnvironment } from '../../seals/src/test-support/aws-env.js';
import { type KmsWireServer, startKmsWireServer } from '../../seals/src/test-support/kms-wire-server.js';

// `custos server` as an operator runs it (the built CLI in its own process,
// AWS credentials in its environment, found by the SDK's default chain),
// auto-unsealing from AWS KMS — verified against the wire-compatible local
// KMS server (SigV4 checked on every request), not against AWS.

const bin = join(import.meta.dirname, '../bin/custos.js');

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** The parent's environment without any AWS or Azure setting, plus `extra`. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(AWS_|AZURE_)/.test(k)));
  return { ...env, ...extra };
}

/** Runs `custos server ARGS` until it listens (then stops it with SIGTERM) or exits; returns all it printed. */
function serve(args: string[], env: NodeJS.ProcessEnv, onListening?: () => Promise<void>) {
  return new Promise<{ output: string; code: number | null }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'server', '--log-format', 'json', ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let started = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
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

describe('custos server with the awskms seal, as a process', () => {
  let kms: KmsWireServer;
  let dir: string;
  let config: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    kms = await startKmsWireServer();
    const key = kms.createKey();
    dir = mkdtempSync(join(tmpdir(), 'custos-kms-proc-'));
    config = join(dir, 'custos.json');
    const port = await freePort();
    const seal = { type: 'awskms', key_id: key.arn, region: kms.region, endpoint: kms.endpoint, cluster: 'proc-test' };
    writeFileSync(config, JSON.stringify({ data_dir: dir, listen: `127.0.0.1:${port}`, seal }));
    env = cleanEnv(awsChildEnvironment(dir, kms.credentials));
  });
  afterAll(async () => {
    await kms?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const expectNoCredentials = (output: string) => {
    expect(output).not.toContain(kms.credentials.secretAccessKey);
    expect(output).not.toContain(kms.credentials.accessKeyId);
  };

  it('initialises and auto-unseals through KMS with credentials from the environment, printing none of them', async () => {
    let status: unknown;
    const first = await serve(['--config', config], env, async () => {
      const address = JSON.parse(readFileSync(config, 'utf8')).listen as string;
      status = await (await fetch(`http://${address}/v1/sys/seal-status`)).json();
    });
    expect(status).toMatchObject({ initialized: true, sealed: false, type: 'wrapped', wrapper: 'awskms' });
    expect(first.output).toContain('initialised with the wrapped seal');
    expectNoCredentials(first.output);
    kms.requests.length = 0;
    const second = await serve(['--config', config], env, async () => {});
    expect(second.output).toContain('custos listening');
    expect(kms.requests).toContain('TrentService.Decrypt');
    expectNoCredentials(second.output);
  }, 90_000);

  it('access denied by KMS stops the start with CUSTOS_ERR_SEAL_ACCESS_DENIED', async () => {
    kms.faults.deny = true;
    try {
      const result = await serve(['--config', config], env);
      expect(result.code).not.toBe(0);
      expect(result.output).toContain('CUSTOS_ERR_SEAL_ACCESS_DENIED');
      expectNoCredentials(result.output);
    } finally {
      kms.faults.deny = false;
    }
  }, 60_000);

  it('no credentials in the default chain stops the start with CUSTOS_ERR_SEAL_KMS_NO_CREDENTIALS', async () => {
    const none = cleanEnv({
      AWS_CONFIG_FILE: join(dir, 'none-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    const result = await serve(['--config', config], none);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('CUSTOS_ERR_SEAL_KMS_NO_CREDENTIALS');
  }, 60_000);
});
