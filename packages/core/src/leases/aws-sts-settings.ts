import { ValidationError } from '../errors/index.js';
import type { AwsEngineSettings, AwsRoleSettings } from './engine-types.js';

const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
/** `arn:<partition>:iam::<12-digit account>:role/<optional path/><name>`. */
const ROLE_ARN = /^arn:aws(-cn|-us-gov)?:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
/** AWS's limit on an AssumeRole session policy (plain text, before packing). */
const MAX_SESSION_POLICY = 2048;

/** Checks an `aws-sts` engine's settings (the endpoints are checked against the egress policy by the caller). */
export function validateAwsEngineSettings(settings: AwsEngineSettings | undefined): AwsEngineSettings {
  if (!settings || typeof settings.region !== 'string' || !REGION.test(settings.region)) {
    throw new ValidationError('An aws-sts engine needs region (e.g. eu-west-1).');
  }
  return {
    region: settings.region,
    ...(settings.sts_endpoint ? { sts_endpoint: settings.sts_endpoint } : {}),
    ...(settings.iam_endpoint ? { iam_endpoint: settings.iam_endpoint } : {}),
  };
}

/**
 * Checks an `aws-sts` role's settings. The session policy is parsed and
 * stored minified: an invalid one is refused when the role is written, not
 * when a task needs credentials, and it must carry statements (an empty
 * session policy would grant nothing, which is a mistake, not a policy).
 */
export function validateAwsRoleSettings(settings: AwsRoleSettings | undefined): AwsRoleSettings {
  if (!settings || typeof settings.role_arn !== 'string' || !ROLE_ARN.test(settings.role_arn)) {
    throw new ValidationError('An aws-sts role needs role_arn (arn:aws:iam::<account>:role/<name>).');
  }
  if (settings.session_policy === undefined) return { role_arn: settings.role_arn };
  let parsed: unknown;
  try {
    parsed = JSON.parse(settings.session_policy);
  } catch {
    throw new ValidationError('session_policy is not JSON.');
  }
  const statement = (parsed as { Statement?: unknown } | null)?.Statement;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || statement === undefined) {
    throw new ValidationError('session_policy is an IAM policy document with a Statement.');
  }
  const minified = JSON.stringify(parsed);
  if (minified.length > MAX_SESSION_POLICY) {
    throw new ValidationError(`session_policy is at most ${MAX_SESSION_POLICY} characters (AWS's limit).`);
  }
  return { role_arn: settings.role_arn, session_policy: minified };
}

/** The IAM role name of a role ARN (the last path segment): what `iam:PutRolePolicy` takes. */
export function roleNameOfArn(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}
