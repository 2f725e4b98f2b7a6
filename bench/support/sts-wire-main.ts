// Runs the wire-compatible local STS+IAM server (the tests' own) as a
// process for bench/sts-issue.bench.mjs, and prints what the benchmark
// needs on one JSON line: the endpoint, the engine's test credentials and
// an IAM role ARN. Stops when its stdin closes.
import { startStsWireServer } from '../../packages/seals/src/test-support/sts-wire-server.js';

const sts = await startStsWireServer();
const roleArn = sts.addRole('bench-reader', { maxSessionDuration: 43_200 });
process.stdout.write(`${JSON.stringify({ endpoint: sts.endpoint, credentials: sts.engineCredentials, roleArn })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void sts.close().then(() => process.exit(0));
});
