import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import type { AwsStsEnginePort } from '../ports/aws-sts-engine-port.js';
import type { Storage } from '../ports/storage.js';
import { roleNameOfArn } from './aws-sts-settings.js';

const REVOKED = 'engine.aws-revoked';
/** The inline policy custos owns on each IAM role it issues sessions of. */
export const AWS_REVOCATION_POLICY_NAME = 'custos-revoked-sessions';
/** The session tag that names a lease; the deny matches on it. */
export const AWS_LEASE_TAG = 'custos_lease';
/**
 * Lease ids listed in the deny, at most. A role's inline policies share
 * 10,240 characters; ~30 per id keeps the document well inside that. Past
 * it, custos falls back to AWS's own "revoke active sessions" shape: deny
 * every session issued before now.
 */
const MAX_LISTED = 200;
const AWS_MAX_SESSION_MS = 43_200_000;

interface RevokedSessions {
  /** Revoked, not yet expired sessions, by lease id. */
  leases: Array<{ id: string; expires_at: number }>;
  /** Every session issued before `time` is denied, until `until` (when the last of them has expired). */
  cutoff?: { time: string; until: number };
}

/**
 * Revocation of AWS role sessions, the AWS way. STS credentials cannot be
 * invalidated one by one: until they expire they work wherever the role's
 * policies allow. What AWS offers is a Deny in the role's own policy that
 * matches the session: custos keeps one inline policy per IAM role
 * ({@link AWS_REVOCATION_POLICY_NAME}) denying every action to the sessions
 * whose `custos_lease` session tag names a revoked lease. An explicit deny
 * wins over every allow, including the session policy's.
 *
 * What remains valid: a session is denied only once IAM has propagated the
 * new policy (seconds, eventually consistent); `sts:GetCallerIdentity`
 * answers whatever any policy says; sessions a revoked session started
 * itself before it was revoked (role chaining) carry no `custos_lease` tag
 * and live to their own expiry — the role's session policy should not allow
 * `sts:AssumeRole`. If custos cannot write the policy (IAM down, permission
 * removed) the lease stays `revoking` and is retried; the credentials work
 * until it succeeds or they expire.
 *
 * The list is pruned of sessions that have expired on their own, so it only
 * holds what is still dangerous. It is kept in custos's storage (sealed)
 * and the whole document is rewritten each time, so two nodes revoking at
 * once converge: the writer re-reads after its PutRolePolicy and writes
 * again if the list moved meanwhile.
 */
export class AwsSessionRevocation {
  readonly #storage: Pick<Storage, 'entries' | 'transaction'>;
  readonly #cipher: Cipher;
  readonly #now: () => number;

  constructor(deps: { storage: Pick<Storage, 'entries' | 'transaction'>; cipher: Cipher; now: () => number }) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#now = deps.now;
  }

  /** Denies the session of lease `leaseId` (valid until `expiresAt`) on its IAM role. */
  async revoke(
    engineName: string,
    engine: Pick<AwsStsEnginePort, 'putRolePolicy'>,
    lease: { id: string; roleArn: string; expiresAt: number },
  ): Promise<void> {
    const roleName = roleNameOfArn(lease.roleArn);
    const key = `${engineName}/${lease.roleArn}`;
    let state = await this.#storage.transaction(async ({ entries }) => {
      const now = this.#now();
      const entry = await entries.get(REVOKED, key);
      const current: RevokedSessions = entry
        ? await openJson<RevokedSessions>(this.#cipher, REVOKED, key, entry.value)
        : { leases: [] };
      const next: RevokedSessions = {
        leases: current.leases.filter((l) => l.expires_at > now && l.id !== lease.id),
        ...(current.cutoff && current.cutoff.until > now ? { cutoff: current.cutoff } : {}),
      };
      next.leases.push({ id: lease.id, expires_at: lease.expiresAt });
      if (next.leases.length > MAX_LISTED) {
        // Too many to list: deny everything issued until now. It also cuts
        // sessions of tasks still running; they ask custos for new ones.
        next.cutoff = { time: new Date(now).toISOString(), until: now + AWS_MAX_SESSION_MS };
        next.leases = [];
      }
      await entries.put(REVOKED, key, sealJson(this.#cipher, REVOKED, key, next));
      return next;
    });
    for (let attempt = 0; attempt < 3; attempt++) {
      await engine.putRolePolicy(roleName, AWS_REVOCATION_POLICY_NAME, denyDocument(state));
      const entry = await this.#storage.entries.get(REVOKED, key);
      const latest = entry ? await openJson<RevokedSessions>(this.#cipher, REVOKED, key, entry.value) : state;
      if (JSON.stringify(latest) === JSON.stringify(state)) return;
      state = latest;
    }
  }
}

/** The inline policy for a role: deny all to the listed leases' sessions, and to those before the cut-off. */
export function denyDocument(state: RevokedSessions): string {
  const statements: unknown[] = [];
  if (state.leases.length > 0) {
    statements.push({
      Sid: 'CustosRevokedLeases',
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
      Condition: { StringEquals: { [`aws:PrincipalTag/${AWS_LEASE_TAG}`]: state.leases.map((l) => l.id) } },
    });
  }
  if (state.cutoff) {
    statements.push({
      Sid: 'CustosRevokedBefore',
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
      Condition: { DateLessThan: { 'aws:TokenIssueTime': state.cutoff.time } },
    });
  }
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}
