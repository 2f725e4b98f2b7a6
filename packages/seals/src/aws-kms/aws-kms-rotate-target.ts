import { CustosError, ValidationError } from '@custos/core';
import { AwsKmsKeyWrapper } from './aws-kms-key-wrapper.js';
import { type AwsKmsSealConfig, parseAwsKmsSealConfig } from './aws-kms-seal-config.js';

/** Where a KMS key lives: the parts of its ARN that name the account and region. */
interface KmsKeyHome {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
}

const ARN = /^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):(?:key|alias)\/.+$/;

/** The partition, region and account of a KMS key or alias ARN; undefined for a key id or alias name. */
export function kmsArnHome(keyId: string): KmsKeyHome | undefined {
  const m = ARN.exec(keyId);
  return m ? { partition: m[1]!, region: m[2]!, account: m[3]! } : undefined;
}

const sameHome = (a: KmsKeyHome, b: KmsKeyHome) =>
  a.partition === b.partition && a.region === b.region && a.account === b.account;

// Names the rule, never a key: the request's value is the operator's, but an
// error (and its audit event) need not repeat account numbers.
const outsideHome = () =>
  new ValidationError(
    'rotate-seal: the new KMS key must be in the same AWS partition, account and region as the current key (name it by key id, alias name, or an ARN of that account and region).',
  );

/**
 * rotate-seal for `awskms`: opens the wrapper for `target` only if that key
 * lives in the current key's partition, account and region.
 *
 * Why: the request comes from an operator with `admin` on `sys/seal`, not
 * from the server config. Without this rule, one of them could name a key
 * ARN in an account they control; custos would store a wrapping of the root
 * key that their key decrypts (root key for anyone holding a DB backup) and
 * the health watch would depend on their key (a kill switch). The account
 * and region are the current key's, i.e. the server config's.
 *
 * Two checks:
 * 1. Before any call: a target ARN must match the current key's home — from
 *    the current key_id when it is an ARN, otherwise from DescribeKey of the
 *    current key (a key id or alias name resolves in the caller's account,
 *    against the configured region, so it cannot leave them by itself).
 * 2. After opening: DescribeKey of the new key, as KMS answers it (an alias
 *    resolved, the owning account), must match too — defence in depth,
 *    before anything is wrapped under it.
 *
 * Needs kms:DescribeKey on both keys, for this rare operator action only.
 */
export async function openAwsKmsRotateTarget(
  section: Readonly<Record<string, unknown>>,
  target: string,
): Promise<AwsKmsKeyWrapper> {
  const current = parseAwsKmsSealConfig(section);
  let next: AwsKmsSealConfig;
  try {
    next = parseAwsKmsSealConfig({ ...section, key_id: target });
  } catch (error) {
    if (error instanceof CustosError && error.code === 'CUSTOS_ERR_SEAL_CONFIG_INVALID') {
      throw new ValidationError('rotate-seal: key is not a KMS key id, alias name, key ARN or alias ARN.');
    }
    throw error;
  }
  const targetHome = kmsArnHome(next.keyId);
  // The configured region is where every call goes; an ARN elsewhere is refused before any call.
  if (targetHome && targetHome.region !== current.region) throw outsideHome();
  const home = kmsArnHome(current.keyId) ?? (await describedHome(new AwsKmsKeyWrapper(current)));
  if (home.region !== current.region) throw outsideHome();
  if (targetHome && !sameHome(targetHome, home)) throw outsideHome();
  const wrapper = new AwsKmsKeyWrapper(next);
  try {
    const described = await wrapper.describeKey();
    const nextHome = kmsArnHome(described.arn);
    if (!nextHome || described.accountId !== nextHome.account || !sameHome(nextHome, home)) throw outsideHome();
    return wrapper;
  } catch (error) {
    await wrapper.close().catch(() => {});
    throw error;
  }
}

async function describedHome(wrapper: AwsKmsKeyWrapper): Promise<KmsKeyHome> {
  try {
    const { arn, accountId } = await wrapper.describeKey();
    const home = kmsArnHome(arn);
    if (!home || home.account !== accountId) {
      throw new CustosError('CUSTOS_ERR_SEAL_UNAVAILABLE', 'AWS KMS DescribeKey: the answer had no usable key ARN.');
    }
    return home;
  } finally {
    await wrapper.close().catch(() => {});
  }
}
