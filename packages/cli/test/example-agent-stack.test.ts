import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { hasPostgres, postgresUrl } from '../../../test-support/postgres.js';
import { pythonWithRequests } from './python-agent.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const python = pythonWithRequests();

// `npm run demo`, as a user runs it: the built packages (`npm test` runs
// `tsc -b` first), the run's PostgreSQL, a Python agent with requests.
describe.skipIf(!hasPostgres() || !python)('examples/agent-stack (npm run demo)', () => {
  it('no agent holds a key, the echoed key comes back redacted, and the revoke cuts the tree off', async () => {
    const { stdout } = await run(join(repo, 'node_modules/.bin/vite-node'), ['examples/agent-stack/demo.ts'], {
      cwd: repo,
      timeout: 150_000,
      env: { ...process.env, CUSTOS_TEST_PG_URL: postgresUrl() },
    });
    expect(stdout).not.toContain('FAIL');
    expect(stdout).toMatch(/model: HTTP 200: You are using Bearer \[REDACTED:upstream:fake-llm\]/);
    expect(stdout).toContain('model: second call: HTTP 401 CUSTOS_ERR_UNAUTHENTICATED');
    expect(stdout).toMatch(/enrichment: task tsk_\S+ read 3 customers as database user \S+/);
    expect(stdout).toContain('ok    custos raised a dead-task-token alert for the revoked agent’s call');
    expect(stdout).toMatch(/\nall 10 expectations held\n$/);
  }, 180_000);
});
