import { execFileSync } from 'node:child_process';

/**
 * A Python with `requests`, as an agent's would be: its absolute path, or
 * undefined (the test is skipped, loudly) — except in CI, which must run
 * every integration test: .ci/run installs python3-requests.
 */
export function pythonWithRequests(): string | undefined {
  try {
    return execFileSync('python3', ['-c', 'import requests, sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  } catch {
    if (process.env.CI === 'true') throw new Error('python3 with requests is required in CI (.ci/run installs it)');
    console.warn('[custos test] SKIPPING a Python agent test: no python3 with requests');
    return undefined;
  }
}
