import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Cipher } from '../common/cipher.js';
import type { Storage } from '../ports/storage.js';
import { MemoryEntryStore } from '../test-support/memory-entry-store.js';
import { AWS_REVOCATION_POLICY_NAME, AwsSessionRevocation } from './aws-session-revocation.js';
import { roleNameOfArn, validateAwsRoleSettings } from './aws-sts-settings.js';

/** AES-256-GCM bound to the AAD, as the barrier does it (the service only needs the Cipher slice). */
function testCipher(): Cipher {
  const key = randomBytes(32);
  const encrypt = (aad: string, plaintext: Uint8Array) => {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(aad));
    const body = Buffer.concat([c.update(plaintext), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  };
  const decrypt = (aad: string, blob: Uint8Array) => {
    const b = Buffer.from(blob);
    const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, 12)).setAAD(Buffer.from(aad));
    d.setAuthTag(b.subarray(12, 28));
    return Buffer.concat([d.update(b.subarray(28)), d.final()]);
  };
  return { sealed: false, encrypt, decrypt, decryptAsync: async (aad, blob) => decrypt(aad, blob) };
}

function rig(start = Date.parse('2026-12-04T12:00:00Z')) {
  const entries = new MemoryEntryStore();
  const storage = { entries, transaction: (fn: (tx: { entries: MemoryEntryStore }) => unknown) => fn({ entries }) };
  let now = start;
  const puts: Array<{ role: string; name: string; document: Record<string, unknown> }> = [];
  const engine = {
    putRolePolicy: async (role: string, name: string, document: string) => {
      puts.push({ role, name, document: JSON.parse(document) });
    },
  };
  const revocation = new AwsSessionRevocation({
    storage: storage as unknown as Pick<Storage, 'entries' | 'transaction'>,
    cipher: testCipher(),
    now: () => now,
  });
  return { revocation, engine, puts, advance: (ms: number) => (now += ms), now: () => now };
}

const ROLE = 'arn:aws:iam::111122223333:role/team/reports-reader';

describe('AWS session revocation (a Deny in the role’s inline policy)', () => {
  it('denies each revoked lease by its session tag, on the role named by the ARN’s last segment', async () => {
    const r = rig();
    await r.revocation.revoke('aws', r.engine, { id: 'lea_a', roleArn: ROLE, expiresAt: r.now() + 3_600_000 });
    await r.revocation.revoke('aws', r.engine, { id: 'lea_b', roleArn: ROLE, expiresAt: r.now() + 3_600_000 });
    const last = r.puts.at(-1)!;
    expect(last.role).toBe('reports-reader');
    expect(last.name).toBe(AWS_REVOCATION_POLICY_NAME);
    expect(last.document).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'CustosRevokedLeases',
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { StringEquals: { 'aws:PrincipalTag/custos_lease': ['lea_a', 'lea_b'] } },
        },
      ],
    });
  });

  it('prunes sessions that have expired on their own', async () => {
    const r = rig();
    await r.revocation.revoke('aws', r.engine, { id: 'lea_short', roleArn: ROLE, expiresAt: r.now() + 900_000 });
    r.advance(901_000);
    await r.revocation.revoke('aws', r.engine, { id: 'lea_late', roleArn: ROLE, expiresAt: r.now() + 900_000 });
    const statement = (r.puts.at(-1)!.document.Statement as Array<{ Condition: unknown }>)[0];
    expect(statement?.Condition).toEqual({ StringEquals: { 'aws:PrincipalTag/custos_lease': ['lea_late'] } });
  });

  it('past 200 listed sessions, falls back to denying every session issued before now (TokenIssueTime)', async () => {
    const r = rig();
    for (let i = 0; i <= 200; i++) {
      await r.revocation.revoke('aws', r.engine, { id: `lea_${i}`, roleArn: ROLE, expiresAt: r.now() + 3_600_000 });
    }
    const document = r.puts.at(-1)!.document;
    expect(document.Statement).toEqual([
      {
        Sid: 'CustosRevokedBefore',
        Effect: 'Deny',
        Action: '*',
        Resource: '*',
        Condition: { DateLessThan: { 'aws:TokenIssueTime': new Date(r.now()).toISOString() } },
      },
    ]);
    // Every policy written stays inside AWS's 10,240-character budget for a role's inline policies.
    for (const put of r.puts) expect(JSON.stringify(put.document).length).toBeLessThan(10_240);
  });
});

describe('aws-sts role settings', () => {
  it('accepts role ARNs with paths and partitions, stores session policies minified', () => {
    expect(roleNameOfArn(ROLE)).toBe('reports-reader');
    expect(
      validateAwsRoleSettings({
        role_arn: 'arn:aws-us-gov:iam::111122223333:role/x',
        session_policy: '{ "Version": "2012-10-17", "Statement": [] }',
      }),
    ).toEqual({
      role_arn: 'arn:aws-us-gov:iam::111122223333:role/x',
      session_policy: '{"Version":"2012-10-17","Statement":[]}',
    });
  });

  it('refuses what AWS would refuse later, with a validation error now', () => {
    for (const settings of [
      { role_arn: 'arn:aws:iam::1111:role/x' },
      { role_arn: 'arn:aws:iam::111122223333:user/x' },
      { role_arn: 'arn:aws:sts::111122223333:assumed-role/x/y' },
      { role_arn: ROLE, session_policy: '[]' },
      { role_arn: ROLE, session_policy: 'not json' },
      { role_arn: ROLE, session_policy: JSON.stringify({ Statement: [{ Resource: 'x'.repeat(2100) }] }) },
    ]) {
      expect(() => validateAwsRoleSettings(settings), JSON.stringify(settings).slice(0, 80)).toThrow();
    }
  });
});
