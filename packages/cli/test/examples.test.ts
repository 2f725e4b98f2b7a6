import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../../', import.meta.url));

// The example runs against the built packages (`npm test` runs `tsc -b` first).
describe('examples/', () => {
  it('agent-tree.mjs: delegation two levels down, slices enforced, one revocation ends the tree', async () => {
    const { stdout } = await run(process.execPath, ['examples/agent-tree.mjs'], { cwd: repo, timeout: 90_000 });
    expect(stdout).not.toContain('FAIL');
    expect(stdout).toMatch(
      /ok {4}researcher cannot mint a wider child \(400 invalid_scope, CUSTOS_ERR_SCOPE_EXCEEDS_PARENT\)/,
    );
    expect(stdout).toMatch(/ok {4}summarizer, whose slice has no delegate:, cannot mint children at all/);
    expect(stdout).toMatch(/^\s+tsk_\S+ {2}coordinator {2}depth=0 {2}state=active/m);
    expect(stdout).toMatch(
      /^\s{4,}tsk_\S+ {2}summarizer {2}depth=2 {2}state=active {2}scope=read:kv\/research\/papers\/\*$/m,
    );
    for (const name of ['coordinator', 'researcher', 'summarizer']) {
      expect(stdout).toContain(`ok    ${name} token refused (401)`);
      expect(stdout).toContain(`ok    ${name} introspection: active: false`);
    }
    expect(stdout).toMatch(/\nall \d+ expectations held\n$/);
  }, 120_000);
});
