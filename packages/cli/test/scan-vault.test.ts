import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliServer } from './cli-harness.js';

describe('custos scan --against-vault against a real server', () => {
  let h: Awaited<ReturnType<typeof startCliServer>>;
  const stored = `fake-stored-${Math.random().toString(36).slice(2, 14)}`;
  beforeAll(async () => {
    h = await startCliServer();
    expect((await h.cli(['secret', 'put', 'kv/app/db', `password=${stored}`])).code).toBe(0);
    mkdirSync(join(h.dir, 'artifact'));
    writeFileSync(join(h.dir, 'artifact', 'config.yaml'), `database:\n  password: ${stored}\n`);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('finds a stored secret in a file by keyed hash, without downloading values', async () => {
    const scan = await h.cli(['scan', join(h.dir, 'artifact'), '--against-vault', '--format', 'json', '--no-progress']);
    expect(scan.code).toBe(1);
    expect(scan.stdout).toContain('kv/app/db');
    expect(scan.stdout).not.toContain(stored);
  });

  it('a token that may not read the secret learns nothing about it', async () => {
    const policy = join(h.dir, 'none.cedar');
    writeFileSync(
      policy,
      'permit(principal, action == Custos::Action::"read", resource in Custos::Path::"kv/other/");\n',
    );
    await h.cli(['policy', 'write', 'other-read', policy]);
    const token = (await h.cli(['token', 'create', '--policy', 'other-read', '--ttl', '10m'])).stdout.trim();
    const scan = await h.cli(
      ['scan', join(h.dir, 'artifact'), '--against-vault', '--format', 'json', '--no-progress'],
      {
        token,
      },
    );
    expect(scan.stdout).not.toContain('kv/app/db');
  });
});
