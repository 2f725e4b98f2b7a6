// Unseal time of the cloud KMS seals (issue 15, "Unseal time per seal type"),
// against the wire-compatible local servers the tests use (AWS KMS with
// SigV4 verification; Azure Key Vault + Entra ID token endpoint over TLS) —
// not against the clouds, so the figures are custos's and the SDKs' own cost
// plus a loopback round trip, never a cloud's latency.
//
// The servers are TypeScript test support, so the measurement itself runs
// under vite-node (bench/unseal-kms-run.ts); the wrappers, the node and the
// storage it imports are the BUILT packages (bench/run.js runs `tsc -b` first).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const run = spawnSync(join(root, 'node_modules/.bin/vite-node'), [join(root, 'bench/unseal-kms-run.ts')], {
  cwd: root,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, NODE_NO_WARNINGS: '1' },
});
if (run.status !== 0) process.exit(run.status ?? 1);
process.stdout.write(run.stdout);
