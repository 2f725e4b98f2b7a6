import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NAMES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_ARN',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
];

/**
 * Puts credentials where the AWS SDK's default provider chain looks first
 * (the environment), and points every other link of the chain at nothing:
 * empty shared config files in a temporary directory, the instance metadata
 * service disabled. So a test sees exactly the credentials it set, never a
 * developer's own profile, and "no credentials" fails fast instead of
 * waiting on 169.254.169.254. Returns a restore function.
 */
export function useAwsEnvironment(credentials?: { accessKeyId: string; secretAccessKey: string }): () => void {
  const saved = new Map(NAMES.map((n) => [n, process.env[n]]));
  const dir = mkdtempSync(join(tmpdir(), 'custos-aws-env-'));
  for (const n of NAMES) delete process.env[n];
  process.env.AWS_CONFIG_FILE = join(dir, 'config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials');
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  if (credentials) {
    process.env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
  }
  return () => {
    for (const [n, v] of saved) {
      if (v === undefined) delete process.env[n];
      else process.env[n] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  };
}

/** The environment a child process (a custos server) needs for the same credentials. */
export function awsChildEnvironment(
  dir: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_CONFIG_FILE: join(dir, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}
