// The cloud of the source-read benchmark, in its own process (run with
// vite-node: the wire server is TypeScript test support): a wire-compatible
// AWS Secrets Manager that verifies SigV4 — not the cloud. Prints its
// endpoint and test credentials as one JSON line, then serves until killed.
import { startSecretsManagerWireServer } from '../packages/seals/src/test-support/secrets-manager-wire-server.js';

const sm = await startSecretsManagerWireServer();
const value = JSON.stringify({ username: 'bench-user', password: `fake-${Math.random().toString(36).slice(2)}` });
sm.putSecret('bench/db', value);
process.stdout.write(`${JSON.stringify({ endpoint: sm.endpoint, region: sm.region, credentials: sm.credentials })}\n`);
process.on('SIGTERM', () => {
  sm.close().then(() => process.exit(0));
});
