// STS credential issuance (issue 15): the latency custos adds to an AWS
// role session. The same wire-compatible local STS server (a separate
// process, the tests' own, SigV4-verifying every request) answers both:
//   direct  — @aws-sdk/client-sts AssumeRole from this process, as an agent
//             holding IAM credentials of its own would;
//   custos  — POST /v1/creds/aws/reader with a task token to a custos server
//             (dev seal, SQLite, audit on), which authorises, calls the same
//             AssumeRole through its egress policy and records the lease.
// Sequential requests (latency, not throughput). The difference of the
// medians is custos's added latency. Not against AWS: real STS adds its own
// network and service time to both.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { fmt, root, startCustos } from './bench-lib.mjs';

const N = Number(process.env.BENCH_STS_REQUESTS ?? 300);
const WARMUP = 20;

const wire = spawn('npx', ['vite-node', 'bench/support/sts-wire-main.ts'], {
  cwd: root,
  stdio: ['pipe', 'pipe', 'inherit'],
});
const first = await new Promise((resolve, reject) => {
  createInterface({ input: wire.stdout }).once('line', resolve);
  wire.once('exit', (code) => reject(new Error(`wire server exited ${code}`)));
});
const { endpoint, credentials, roleArn } = JSON.parse(first);

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
async function measure(fn) {
  for (let i = 0; i < WARMUP; i++) await fn(i);
  const times = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return {
    p50: percentile(times, 50),
    p90: percentile(times, 90),
    p99: percentile(times, 99),
    mean: times.reduce((a, b) => a + b, 0) / N,
  };
}

const sts = new STSClient({ region: 'us-east-1', endpoint, credentials });
const direct = await measure((i) =>
  sts.send(
    new AssumeRoleCommand({
      RoleArn: roleArn,
      RoleSessionName: `bench-${i}`,
      DurationSeconds: 3600,
      SourceIdentity: 'bench',
      Tags: [{ Key: 'custos_task', Value: 'bench' }],
    }),
  ),
);
sts.destroy();

const custos = await startCustos(
  {
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  },
  [],
  ['--egress-allow', '127.0.0.1'],
);
let result;
try {
  await custos.call('PUT', '/v1/engines/aws', {
    type: 'aws-sts',
    region: 'us-east-1',
    sts_endpoint: endpoint,
    iam_endpoint: endpoint,
  });
  await custos.call('PUT', '/v1/engines/aws/roles/reader', { role_arn: roleArn, default_ttl: '1h', max_ttl: '2h' });
  await custos.call('PUT', '/v1/policies/aws-issue', {
    policy: 'permit(principal, action == Custos::Action::"issue", resource == Custos::Path::"aws/reader");',
  });
  await custos.call('PUT', '/v1/roles/bench', { policies: ['aws-issue'], max_ttl: '3h', auth: ['bootstrap'] });
  const task = await custos.call('POST', '/v1/roles/bench/tasks', { ttl: '2h' });
  result = await measure(async () => {
    const r = await fetch(`${custos.addr}/v1/creds/aws/reader`, {
      method: 'POST',
      headers: { authorization: `Bearer ${task.token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    if (r.status !== 200) throw new Error(`creds: ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  });
} finally {
  await custos.stop();
  wire.stdin.end();
}

const line = (name, r) => `| ${name} | ${fmt(r.p50, 2)} | ${fmt(r.p90, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.mean, 2)} |`;
process.stdout.write(`## STS credential issuance: custos's added latency (aws-sts engine)

${N} sequential AssumeRole sessions each way (after ${WARMUP} warm-up), against the wire-compatible local STS server
(a separate process on loopback, verifying SigV4 on every request — not AWS). "custos" is \`POST /v1/creds/aws/reader\`
with a task token: authentication, Cedar authorisation, audit (hash chain, fsync as configured), the AssumeRole through
the egress policy, and the sealed lease record in SQLite. The machine is shared with other sessions (2 cores): figures
are indicative.

| Path | p50 ms | p90 ms | p99 ms | mean ms |
| --- | ---: | ---: | ---: | ---: |
${line('direct: @aws-sdk/client-sts → wire STS', direct)}
${line('through custos: POST /v1/creds → wire STS', result)}

custos's added latency at the median: **${fmt(result.p50 - direct.p50, 2)} ms** (p90: ${fmt(result.p90 - direct.p90, 2)} ms).
`);
