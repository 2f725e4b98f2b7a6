import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { hasPostgres, postgresUrl } from '../../../test-support/postgres.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../../', import.meta.url));

// Runs against the built packages (`npm test` runs `tsc -b` first) and the run's PostgreSQL.
describe.skipIf(!hasPostgres())('examples/db-pipeline.mjs', () => {
  it('task-owned database users and a rotation invisible to the running pipeline', async () => {
    const { stdout } = await run(process.execPath, ['examples/db-pipeline.mjs'], {
      cwd: repo,
      timeout: 90_000,
      env: { ...process.env, CUSTOS_EXAMPLE_POSTGRES_URL: postgresUrl() },
    });
    expect(stdout).not.toContain('FAIL');
    expect(stdout).toContain('ok    pipeline A still reads the version it pinned');
    expect(stdout).toContain('ok    pipeline B, started after the rotation, reads the new key');
    expect(stdout).toContain('ok    its open session was terminated');
    expect(stdout).toMatch(/\nall \d+ expectations held\n$/);
  }, 120_000);
});
