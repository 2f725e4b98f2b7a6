import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources of every workspace package, so a
// change is tested without a build step; `tsc -b` (npm's prepare) builds dist/
// for the CLI and for users.
const packages = ['redact', 'core', 'engines', 'seals', 'sources', 'storage', 'scan', 'server', 'cli', 'sdk'];

export default defineConfig({
  resolve: {
    alias: Object.fromEntries(
      packages.map((p) => [`@custos/${p}`, fileURLToPath(new URL(`./packages/${p}/src/index.ts`, import.meta.url))]),
    ),
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Finds or starts one PostgreSQL for the whole run (test-support/postgres.ts);
    // builds the console if its dist/ is missing (test-support/console-build.ts).
    globalSetup: ['./test-support/global-setup.ts', './test-support/console-build.ts'],
  },
});
