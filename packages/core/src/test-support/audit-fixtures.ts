import { generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { type AuditSigner, auditCheckpointStatement } from '../audit/audit-checkpoint.js';
import type { AuditEventInput } from '../audit/audit-event.js';
import type { AuditSink } from '../audit/audit-sink.js';
import type { AuditCheckpointV1, AuditRecord } from '../ports/storage.js';

/** A fresh Ed25519 checkpoint signer and the public-key map a verifier needs. */
export function testSigner(keyId = `audit-${randomBytes(4).toString('hex')}`): {
  signer: AuditSigner;
  publicKeys: Map<string, KeyObject>;
} {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { signer: { keyId, privateKey }, publicKeys: new Map([[keyId, publicKey]]) };
}

/**
 * A legacy (v1) checkpoint, as custos signed them before checkpoints were
 * chained: for tests of chains written by an earlier version.
 */
export function signLegacyCheckpoint(
  signer: AuditSigner,
  at: { seq: number; hash: string; ts: string },
): AuditCheckpointV1 {
  const unsigned = { version: 1 as const, seq: at.seq, hash: at.hash, ts: at.ts };
  const signature = sign(null, Buffer.from(auditCheckpointStatement(unsigned)), signer.privateKey);
  return { ...unsigned, keyId: signer.keyId, signature: signature.toString('base64url') };
}

/**
 * The audit dictionary span of the archival SIGKILL test's database: small,
 * so that its archive run deletes dictionary entries (each request event's
 * path is an entry of its own) and can be killed between those batches.
 */
export const KILL_TEST_DICTIONARY_SPAN = 20;

/** A plausible request event, numbered so tests can tell events apart. */
export function requestEvent(
  i: number,
  extra: Partial<Extract<AuditEventInput, { type: 'request' }>> = {},
): AuditEventInput {
  return {
    type: 'request',
    request_id: `req-${i}`,
    auth: { identity: 'role:enricher', policies: ['enricher'], task_chain: ['task-1'] },
    request: {
      method: 'GET',
      route: '/v1/secrets/*',
      path: `kv/test/item-${i}`,
      action: 'read',
      source_ip: '127.0.0.1',
    },
    decision: 'allow',
    status: 200,
    ...extra,
  };
}

/** A sink whose writes succeed or fail on demand, and which keeps what it was given. */
export class ControllableSink implements AuditSink {
  readonly name: string;
  readonly durable: boolean;
  fail = false;
  writes = 0;
  records: AuditRecord[] = [];

  constructor(name = 'fake', durable = true) {
    this.name = name;
    this.durable = durable;
  }

  async write(records: readonly AuditRecord[]): Promise<void> {
    this.writes++;
    if (this.fail) throw new Error(`${this.name} sink: write failed (test outage)`);
    this.records.push(...records);
  }

  async close(): Promise<void> {}
}
