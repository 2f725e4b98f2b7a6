import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { timeOrderedId } from '../common/random-pool.js';
import { CustosError, isCustosError, PermissionDeniedError } from '../errors/index.js';
import type { EntryStore, Storage } from '../ports/storage.js';
import { type TaskService, taskTreePrefix } from '../tasks/task-service.js';
import { AWS_LEASE_TAG, AwsSessionRevocation } from './aws-session-revocation.js';
import { AWS_MIN_SESSION_MS, type EngineService, toEngineRole } from './engine-service.js';
import type { EngineRoleRecord } from './engine-types.js';
import type { IssuedLease, LeaseOwner, LeaseRecord, LeaseView } from './lease-types.js';

const LEASES = 'lease';
const BY_TASK = 'lease.task';
/** After this many failed attempts a lease is reported as `revoke_failed` (and still retried). */
const FAILED_AFTER = 5;
const RETRY_BASE_MS = 2_000;
const RETRY_MAX_MS = 5 * 60_000;
const IMMEDIATE_RETRY_MS = 200;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LEASE_ID = /^lea_[A-Za-z0-9_-]{22}$/;

export interface LeaseServiceDeps {
  storage: Pick<Storage, 'entries' | 'transaction'>;
  cipher: Cipher;
  engines: EngineService;
  tasks: Pick<TaskService, 'isActive'>;
  now?: () => number;
}

const taskKey = (taskId: string, leaseId: string) => `${taskId}/${leaseId}`;
/**
 * Leases by the owning task's place in the task tree: `<root>/<…>/<task>/~<lease>`
 * (`~` is outside the id alphabet). One prefix scan finds every lease of a
 * subtree, so ending a tree costs what its leases cost, not what its tasks do.
 */
const BY_TREE = 'lease.tree';
const treeKey = (chain: readonly string[], leaseId: string) => `${chain.join('/')}/~${leaseId}`;
const TREE_PAGE = 1_000;
/** Lease records read by one listing, at most (see {@link LeaseService.list}). */
export const MAX_LEASES_SCANNED = 5_000;
const LIST_PAGE = 500;

/**
 * Dynamic database credentials as leases owned by tasks. A lease is recorded
 * before its credentials are returned; it ends when it expires, when it is
 * revoked, or when its task (or any ancestor) ends. Revocation is retried
 * until the engine confirms it: a failing lease stays in storage, scheduled
 * for another attempt through the expiry index and reported as
 * `revoke_failed`, never forgotten.
 *
 * Several nodes may reap the same lease at once: engine revocation is
 * idempotent (a missing user is success) and a `revoked` record is never
 * moved back, so the race costs at most one extra DROP.
 */
export class LeaseService {
  readonly #storage: LeaseServiceDeps['storage'];
  readonly #cipher: Cipher;
  readonly #engines: EngineService;
  readonly #tasks: LeaseServiceDeps['tasks'];
  readonly #now: () => number;
  readonly #awsRevocation: AwsSessionRevocation;

  constructor(deps: LeaseServiceDeps) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#engines = deps.engines;
    this.#tasks = deps.tasks;
    this.#now = deps.now ?? Date.now;
    this.#awsRevocation = new AwsSessionRevocation({ storage: deps.storage, cipher: deps.cipher, now: this.#now });
  }

  /** Creates a database user for `owner` under an engine role and records its lease. */
  async issue(engineName: string, roleName: string, owner: LeaseOwner, ttlMs?: number): Promise<IssuedLease> {
    const role = await this.#engines.findRole(engineName, roleName);
    if (!role) throw new CustosError('CUSTOS_ERR_NOT_FOUND', 'No such engine role.');
    if (ttlMs !== undefined && (!Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > role.max_ttl_ms)) {
      throw new CustosError('CUSTOS_ERR_INVALID_TTL', 'The TTL exceeds the role’s max_ttl.');
    }
    const now = this.#now();
    // A task's credentials never outlive the task.
    const cap = Math.min(now + role.max_ttl_ms, owner.task?.expiresAtMs ?? Number.POSITIVE_INFINITY);
    const expiresAt = Math.min(now + (ttlMs ?? role.default_ttl_ms), cap);
    if (expiresAt <= now) throw new CustosError('CUSTOS_ERR_TTL_EXCEEDS_PARENT');
    if (role.aws) return this.#issueAws(engineName, role, owner, now, expiresAt, cap);
    const engine = await this.#engines.open(engineName);
    const engineRole = toEngineRole(role);
    const credential = await engine.createCredential(engineRole, {
      expiresAt: new Date(expiresAt),
      // Short: MySQL user names are at most 32 characters.
      usernamePrefix: roleName.replace(/[^a-z0-9_]/g, '_').slice(0, 8),
    });
    const record: LeaseRecord = {
      id: `lea_${timeOrderedId()}`,
      engine: engineName,
      role: roleName,
      username: credential.username,
      task_id: owner.task?.id ?? null,
      task_chain: owner.task ? [...owner.task.chain] : [],
      owner: owner.name,
      issued_time: new Date(now).toISOString(),
      expires_at: expiresAt,
      max_expires_at: cap,
      state: 'active',
      attempts: 0,
      last_error: null,
      revoked_time: null,
    };
    try {
      await this.#storage.transaction(async ({ entries }) => {
        await this.#write(entries, record);
        if (record.task_id) {
          await entries.put(BY_TASK, taskKey(record.task_id, record.id), new Uint8Array(0));
          await entries.put(BY_TREE, treeKey(record.task_chain, record.id), new Uint8Array(0));
        }
      });
    } catch (error) {
      // A user that exists but is not recorded would never be revoked: drop it now.
      await engine.revokeCredential(engineRole, credential.username).catch(() => undefined);
      throw error;
    }
    // The task may have ended while the user was being created, after its
    // cascade had already looked for leases: check again and take it back.
    if (owner.task) {
      const status = await this.#tasks.isActive(owner.task.chain);
      if (!status.active) {
        await this.revoke(record.id);
        throw new CustosError('CUSTOS_ERR_UNAUTHENTICATED');
      }
    }
    return {
      lease_id: record.id,
      engine: engineName,
      role: roleName,
      username: credential.username,
      password: credential.password,
      expire_time: new Date(expiresAt).toISOString(),
      ttl_seconds: Math.floor((expiresAt - now) / 1_000),
      task_id: record.task_id,
    };
  }

  /**
   * Per-task AWS credentials: one `sts:AssumeRole` session of the role's IAM
   * role, narrowed by its session policy, tagged with the task and the
   * lease, the task id as SourceIdentity (it stays on the session through
   * role chaining and in CloudTrail), for no longer than the task has left.
   *
   * AWS issues no session shorter than 900 s. When the task (or the TTL asked
   * for) leaves less, custos refuses (CUSTOS_ERR_AWS_DURATION_TOO_SHORT)
   * instead of issuing 900 s: a credential that outlives its task would break
   * the one promise custos makes about task credentials, and the deny written
   * at task end depends on IAM being reachable and propagating — AWS's own
   * expiry does not. A task that needs AWS credentials starts with at least
   * 15 minutes.
   */
  async #issueAws(
    engineName: string,
    role: EngineRoleRecord,
    owner: LeaseOwner,
    now: number,
    expiresAt: number,
    cap: number,
  ): Promise<IssuedLease> {
    const aws = role.aws!;
    if (expiresAt - now < AWS_MIN_SESSION_MS) throw new CustosError('CUSTOS_ERR_AWS_DURATION_TOO_SHORT');
    const durationSeconds = Math.floor((expiresAt - now) / 1_000);
    const id = `lea_${timeOrderedId()}`;
    const taskId = owner.task?.id ?? null;
    // SourceIdentity and session names: [\w+=,.@-]; task and lease ids fit.
    const sourceIdentity = taskId ?? `custos-${owner.name.replace(/[^\w+=,.@-]/g, '-')}`.slice(0, 64);
    const sessionName = `custos-${taskId ?? id}`.slice(0, 64);
    const engine = await this.#engines.openAws(engineName);
    const credentials = await engine.assumeRole({
      roleArn: aws.role_arn,
      ...(aws.session_policy ? { sessionPolicy: aws.session_policy } : {}),
      sessionName,
      sourceIdentity,
      tags: { custos_task: taskId ?? 'none', [AWS_LEASE_TAG]: id, custos_role: role.name },
      durationSeconds,
    });
    // AWS's expiration is the truth (never later than asked).
    const expires = Math.min(credentials.expiration.getTime(), now + durationSeconds * 1_000);
    const record: LeaseRecord = {
      id,
      engine: engineName,
      role: role.name,
      username: credentials.accessKeyId,
      task_id: taskId,
      task_chain: owner.task ? [...owner.task.chain] : [],
      owner: owner.name,
      issued_time: new Date(now).toISOString(),
      expires_at: expires,
      max_expires_at: Math.min(cap, expires),
      state: 'active',
      attempts: 0,
      last_error: null,
      revoked_time: null,
      aws: { role_arn: aws.role_arn, session_name: sessionName, source_identity: sourceIdentity },
    };
    try {
      await this.#storage.transaction(async ({ entries }) => {
        await this.#write(entries, record);
        if (record.task_id) {
          await entries.put(BY_TASK, taskKey(record.task_id, record.id), new Uint8Array(0));
          await entries.put(BY_TREE, treeKey(record.task_chain, record.id), new Uint8Array(0));
        }
      });
    } catch (error) {
      // A session nobody recorded would never be denied: deny it now.
      await this.#awsRevocation
        .revoke(engineName, engine, { id, roleArn: aws.role_arn, expiresAt: expires })
        .catch(() => undefined);
      throw error;
    }
    if (owner.task) {
      const status = await this.#tasks.isActive(owner.task.chain);
      if (!status.active) {
        await this.revoke(record.id);
        throw new CustosError('CUSTOS_ERR_UNAUTHENTICATED');
      }
    }
    return {
      lease_id: id,
      engine: engineName,
      role: role.name,
      username: credentials.accessKeyId,
      password: credentials.secretAccessKey,
      session_token: credentials.sessionToken,
      assumed_role_arn: credentials.assumedRoleArn,
      expire_time: new Date(expires).toISOString(),
      ttl_seconds: Math.floor((expires - now) / 1_000),
      task_id: taskId,
    };
  }

  /** Extends an active lease, up to its role's max TTL from issue and never past its task. */
  async renew(id: string, incrementMs: number): Promise<LeaseView> {
    const record = await this.#get(id);
    if (record.state !== 'active') throw new CustosError('CUSTOS_ERR_LEASE_NOT_FOUND');
    if (record.aws) throw new CustosError('CUSTOS_ERR_AWS_LEASE_NOT_RENEWABLE');
    if (!Number.isInteger(incrementMs) || incrementMs <= 0) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    const expiresAt = Math.min(this.#now() + incrementMs, record.max_expires_at);
    if (expiresAt > record.expires_at) {
      const engine = await this.#engines.open(record.engine);
      await engine.renewCredential(record.username, new Date(expiresAt));
      record.expires_at = expiresAt;
      await this.#write(this.#storage.entries, record);
    }
    return leaseView(record);
  }

  /**
   * Revokes a lease: the engine drops the user and ends its sessions.
   * Idempotent. A failure is recorded and scheduled for retry, then thrown.
   */
  async revoke(id: string): Promise<LeaseView> {
    const record = await this.#get(id);
    if (record.state === 'revoked') return leaseView(record);
    try {
      if (record.aws) await this.#revokeAws(record);
      else await this.#revokeDatabase(record);
    } catch (error) {
      await this.#recordFailure(id, isCustosError(error) ? error.code : 'CUSTOS_ERR_ENGINE_UNAVAILABLE');
      throw error;
    }
    return this.#storage.transaction(async ({ entries }) => {
      const current = (await this.#read(entries, id)) ?? record;
      current.state = 'revoked';
      current.revoked_time = new Date(this.#now()).toISOString();
      current.last_error = null;
      await this.#write(entries, current);
      if (current.task_id) {
        await entries.delete(BY_TASK, taskKey(current.task_id, id));
        await entries.delete(BY_TREE, treeKey(current.task_chain, id));
      }
      return leaseView(current);
    });
  }

  /**
   * An AWS session cannot be revoked, only denied (see AwsSessionRevocation):
   * one that has already expired needs nothing, so the reaper's expiry pass
   * makes no IAM call.
   */
  async #revokeAws(record: LeaseRecord): Promise<void> {
    if (record.expires_at <= this.#now()) return;
    const engine = await this.#engines.openAws(record.engine);
    await this.#awsRevocation.revoke(record.engine, engine, {
      id: record.id,
      roleArn: record.aws!.role_arn,
      expiresAt: record.expires_at,
    });
  }

  async #revokeDatabase(record: LeaseRecord): Promise<void> {
    const engine = await this.#engines.open(record.engine);
    const role = await this.#engines.findRole(record.engine, record.role);
    // A deleted role still has a user to drop: the engine's built-in revocation does it.
    await engine.revokeCredential(
      role
        ? toEngineRole(role)
        : {
            name: record.role,
            creationStatements: [],
            revocationStatements: [],
            defaultTtlMs: 1,
            maxTtlMs: 1,
          },
      record.username,
    );
  }

  /**
   * Revokes every lease held anywhere in an ended subtree (the task-ended
   * cascade hook), given the subtree's tree prefix. Failures stay scheduled
   * for retry.
   */
  async revokeForSubtree(prefix: string): Promise<number> {
    let count = 0;
    let after: string | undefined;
    for (;;) {
      const keys = await this.#storage.entries.list(BY_TREE, prefix, { limit: TREE_PAGE, ...(after ? { after } : {}) });
      const ids = keys.map((key) => key.slice(key.lastIndexOf('~') + 1));
      await this.#revokeAll(ids);
      count += ids.length;
      if (keys.length < TREE_PAGE) return count;
      after = keys[keys.length - 1];
    }
  }

  /** Revokes expired leases and retries failed revocations that are due. Multi-node safe. */
  async reapExpired(limit = 500): Promise<number> {
    const ids = await this.#storage.entries.listExpired(LEASES, this.#now(), limit);
    await this.#revokeAll(ids);
    return ids.length;
  }

  async read(id: string): Promise<LeaseView> {
    return leaseView(await this.#get(id));
  }

  /**
   * Lists leases, oldest first: those held anywhere in a task's subtree
   * (`subtree`: the calling task's chain), or one task's (`taskId`), or all.
   * `visible` decides per lease what the caller may see (an operator's
   * policy on `sys/leases/<id>`); a listing shows nothing the caller could
   * not read one by one. Subtree and task listings hold leases not yet
   * revoked (the indexes drop a lease when it is revoked); the full listing
   * holds every state.
   *
   * At most {@link MAX_LEASES_SCANNED} records are read per call, whatever
   * `visible` lets through, so a caller whose policy shows few leases cannot
   * make one request decrypt the whole store; `limit` (default 1000) caps
   * what is returned.
   */
  async list(
    filter: {
      taskId?: string;
      subtree?: readonly string[];
      state?: string;
      limit?: number;
      visible?: (lease: LeaseView) => boolean;
    } = {},
  ): Promise<LeaseView[]> {
    const limit = Math.max(1, Math.min(filter.limit ?? 1_000, MAX_LEASES_SCANNED));
    const out: LeaseView[] = [];
    let scanned = 0;
    const take = (record: LeaseRecord): boolean => {
      scanned++;
      if (filter.taskId && record.task_id !== filter.taskId) return scanned < MAX_LEASES_SCANNED;
      if (filter.state && record.state !== filter.state) return scanned < MAX_LEASES_SCANNED;
      const view = leaseView(record);
      if (!filter.visible || filter.visible(view)) out.push(view);
      return out.length < limit && scanned < MAX_LEASES_SCANNED;
    };
    const { entries } = this.#storage;
    if (filter.subtree || filter.taskId) {
      // An index of lease ids: by tree position (`<chain>/…/~<lease>`) or by task (`<task>/<lease>`).
      const [namespace, prefix] = filter.subtree
        ? [BY_TREE, taskTreePrefix(filter.subtree)]
        : [BY_TASK, `${filter.taskId}/`];
      let after: string | undefined;
      for (;;) {
        const keys = await entries.list(namespace, prefix, { limit: LIST_PAGE, ...(after ? { after } : {}) });
        for (const key of keys) {
          const id = key.slice(key.lastIndexOf(filter.subtree ? '~' : '/') + 1);
          const record = await this.#read(entries, id);
          if (record && !take(record)) return out;
        }
        if (keys.length < LIST_PAGE) return out;
        after = keys[keys.length - 1];
      }
    }
    let after: string | undefined;
    for (;;) {
      const page = await entries.scan(LEASES, '', { limit: LIST_PAGE, ...(after ? { after } : {}) });
      for (const entry of page) {
        if (!take(await openJson<LeaseRecord>(this.#cipher, LEASES, entry.key, entry.value))) return out;
      }
      if (page.length < LIST_PAGE) return out;
      after = page[page.length - 1]?.key;
    }
  }

  /** Checks that a task may manage a lease: it owns it or is an ancestor of its owner. */
  assertTaskMayManage(taskId: string, lease: LeaseView): void {
    if (!lease.task_chain.includes(taskId)) throw new PermissionDeniedError();
  }

  /**
   * Revokes many leases: engines in parallel, one lease at a time per engine.
   * Concurrent DDL on one database conflicts (PostgreSQL answers "tuple
   * concurrently updated" when two revocations rewrite the same ACLs), so a
   * cascade serialises per engine and retries a failure once at once before
   * leaving it to the scheduled retries.
   */
  async #revokeAll(ids: readonly string[]): Promise<void> {
    const byEngine = new Map<string, string[]>();
    for (const id of ids) {
      const record = await this.#read(this.#storage.entries, id);
      if (!record || record.state === 'revoked') continue;
      const list = byEngine.get(record.engine) ?? [];
      list.push(id);
      byEngine.set(record.engine, list);
    }
    await Promise.all(
      [...byEngine.values()].map(async (list) => {
        for (const id of list) {
          // A failure is already recorded and scheduled by revoke().
          await this.revoke(id).catch(async () => {
            await sleep(IMMEDIATE_RETRY_MS);
            await this.revoke(id).catch(() => undefined);
          });
        }
      }),
    );
  }

  async #recordFailure(id: string, code: string): Promise<void> {
    await this.#storage.transaction(async ({ entries }) => {
      const record = await this.#read(entries, id);
      if (!record || record.state === 'revoked') return;
      record.attempts += 1;
      record.last_error = code;
      record.state = record.attempts >= FAILED_AFTER ? 'revoke_failed' : 'revoking';
      // The expiry index doubles as the retry schedule, with exponential backoff.
      const delay = Math.min(RETRY_BASE_MS * 2 ** (record.attempts - 1), RETRY_MAX_MS);
      await this.#write(entries, record, this.#now() + delay);
    });
  }

  async #write(entries: EntryStore, record: LeaseRecord, retryAt?: number): Promise<void> {
    // Revoked leases leave the expiry index; everything else stays due at
    // its expiry (or its next retry), so nothing unrevoked is ever dropped.
    const due = record.state === 'revoked' ? null : (retryAt ?? record.expires_at);
    await entries.put(LEASES, record.id, sealJson(this.#cipher, LEASES, record.id, record), { expiresAt: due });
  }

  async #read(entries: EntryStore, id: string): Promise<LeaseRecord | undefined> {
    if (!LEASE_ID.test(id)) return undefined;
    const entry = await entries.get(LEASES, id);
    return entry ? openJson<LeaseRecord>(this.#cipher, LEASES, id, entry.value) : undefined;
  }

  async #get(id: string): Promise<LeaseRecord> {
    const record = await this.#read(this.#storage.entries, id);
    if (!record) throw new CustosError('CUSTOS_ERR_LEASE_NOT_FOUND');
    return record;
  }
}

function leaseView(record: LeaseRecord): LeaseView {
  const { expires_at, max_expires_at: _max, ...rest } = record;
  return { ...rest, expire_time: new Date(expires_at).toISOString() };
}
