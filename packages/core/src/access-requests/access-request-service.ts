import { createHash, randomBytes } from 'node:crypto';
import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { CustosError, NotFoundError, ValidationError } from '../errors/index.js';
import { parseScope } from '../policy/index.js';
import type { EntryStore, Storage } from '../ports/storage.js';
import type { EventBus } from '../rotation/event-bus.js';
import type { RoleService } from '../tasks/role-service.js';
import type { TaskService, TaskTokenSubject } from '../tasks/task-service.js';
import { approveResources, normaliseRequestScope, requestResource, scopeWithin } from './access-request-scope.js';
import type {
  AccessApproval,
  AccessDecisionRecord,
  AccessRequest,
  AccessRequestRecord,
  AccessRequestStatus,
  ActiveElevation,
} from './access-request-types.js';
import type { ElevationIndex } from './elevation-index.js';

const REQUESTS = 'jit.request';
const PENDING = 'jit.pending';
const APPROVALS = 'jit.approval';
const DECISIONS = 'jit.decision';
const REVOKED = 'jit.revoked';
/** Pending requests one task may hold: an agent cannot flood approvers' queues. */
export const MAX_PENDING_PER_TASK = 16;
/** Requests a listing looks at, newest first. */
const LIST_SCAN = 2_000;
/** Keys read per round trip when paging through a namespace. */
const LIST_PAGE = 1_000;
export const MAX_REASON_LENGTH = 1_000;
const DEFAULT_TTL_SECONDS = 600;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** What a task asks for. */
export interface AccessRequestInput {
  readonly scope: string;
  readonly reason: string;
  /** Seconds; default 10 minutes, cut to the task's remaining life. */
  readonly ttlSeconds?: number;
  readonly children?: boolean;
}

/** Who decides, as the server saw them (after authentication). */
export type Decider =
  | {
      readonly kind: 'operator';
      /** `token:<accessor>`. */
      readonly name: string;
      readonly root: boolean;
      readonly policies: readonly string[];
      /** The caller's own policy check of `approve` on one resource. */
      readonly mayApprove: (resource: string) => boolean;
    }
  | { readonly kind: 'task'; readonly name: string; readonly chain: readonly string[] };

/** What an approver may narrow. */
export interface ApprovalInput {
  readonly scope?: string;
  readonly ttlSeconds?: number;
  readonly children?: boolean;
}

/** What the service tells the outside world (event stream, webhook): never the reason. */
export interface AccessRequestNotice {
  readonly type: 'request.created' | 'request.approved' | 'request.denied' | 'request.revoked' | 'request.expired';
  readonly id: string;
  readonly task_id: string;
  readonly scope: string;
  readonly status: AccessRequestStatus;
}

/**
 * Just-in-time access requests (docs/jit.md): a task asks for a scope
 * beyond its own, within its role's request ceiling; humans approve (or
 * deny); an approval becomes an *elevation* held in the {@link ElevationIndex}
 * and checked on every request of the task, bounded by the task's life.
 *
 * **One decision, written once.** The decision is a put-if-absent entry: an
 * approval that completes the count and a deny racing it (on one node or
 * two, SQLite or PostgreSQL) cannot both land — the loser is told
 * `CUSTOS_ERR_REQUEST_ALREADY_DECIDED` and nothing of it is stored but its
 * approval vote, which a decided request never counts again.
 */
export class AccessRequestService {
  readonly #storage: Pick<Storage, 'entries' | 'transaction'>;
  readonly #cipher: Cipher;
  readonly #tasks: Pick<TaskService, 'record' | 'isActive'>;
  readonly #roles: Pick<RoleService, 'find'>;
  readonly #elevations: ElevationIndex;
  readonly #events: EventBus | undefined;
  readonly #notify: ((notice: AccessRequestNotice) => void) | undefined;
  readonly #now: () => number;
  readonly #lineage: (name: string) => Promise<readonly string[]>;
  readonly #waiters = new Map<string, Set<() => void>>();

  constructor(deps: {
    storage: Pick<Storage, 'entries' | 'transaction'>;
    cipher: Cipher;
    tasks: Pick<TaskService, 'record' | 'isActive'>;
    roles: Pick<RoleService, 'find'>;
    elevations: ElevationIndex;
    events?: EventBus;
    /** The webhook's queue (only `request.created` goes there). */
    notify?: (notice: AccessRequestNotice) => void;
    now?: () => number;
    /**
     * A principal name and the names of the tokens that minted it, self
     * first, up to the highest one the root token did not mint
     * (`TokenService.lineage`): the last one is the *person*.
     */
    lineage?: (name: string) => Promise<readonly string[]>;
  }) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#tasks = deps.tasks;
    this.#roles = deps.roles;
    this.#elevations = deps.elevations;
    this.#events = deps.events;
    this.#notify = deps.notify;
    this.#now = deps.now ?? Date.now;
    this.#lineage = deps.lineage ?? (async (name) => [name]);
  }

  get elevations(): ElevationIndex {
    return this.#elevations;
  }

  /**
   * A task asks for `input.scope` for itself. Refused outright (never
   * queued) when the scope is outside its role's ceiling or the TTL outlives
   * the task. A pending request of the same task for the same scope is
   * returned instead of a second one (`created: false`).
   */
  async create(
    task: TaskTokenSubject,
    input: AccessRequestInput,
  ): Promise<{ request: AccessRequest; created: boolean }> {
    const scope = normaliseRequestScope(input.scope);
    const reason = input.reason.trim();
    if (reason.length === 0 || reason.length > MAX_REASON_LENGTH || CONTROL.test(reason)) {
      throw new ValidationError(`reason is 1 to ${MAX_REASON_LENGTH} characters without control characters.`);
    }
    const record = await this.#tasks.record(task.task_id);
    const role = await this.#roles.find(record.role);
    // The ceiling is the operator's statement of what this kind of agent
    // may ever be given; beyond it there is nothing a human could approve.
    if (!role?.request_scope || !scopeWithin(scope, role.request_scope)) {
      throw new CustosError('CUSTOS_ERR_REQUEST_NOT_REQUESTABLE');
    }
    const now = this.#now();
    const remaining = Math.floor((record.expires_at - now) / 1000);
    const ttl = input.ttlSeconds ?? Math.min(DEFAULT_TTL_SECONDS, remaining);
    if (!Number.isInteger(ttl) || ttl < 1) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    if (ttl > remaining) throw new CustosError('CUSTOS_ERR_REQUEST_TTL_EXCEEDS_TASK');
    const id = newRequestId(now);
    const created: AccessRequestRecord = {
      id,
      task_id: record.id,
      chain: [...record.chain],
      identity: record.sub,
      identity_lineage: [...(await this.#lineage(record.sub))],
      role: record.role,
      ...(role.id ? { role_id: role.id } : {}),
      scope,
      reason,
      ttl_seconds: ttl,
      children: input.children === true,
      approvals_required: role.approvals ?? 1,
      approver_policies: [...(role.approvers ?? [])],
      created_at: new Date(now).toISOString(),
      task_expires_at: record.expires_at,
    };
    const pendingKey = `${record.id}|${createHash('sha256').update(scope).digest('hex').slice(0, 32)}`;
    const outcome = await this.#storage.transaction(async ({ entries }) => {
      // Put-if-absent first: two identical requests racing (two nodes too) end as one.
      if (!(await entries.putIfAbsent(PENDING, pendingKey, new TextEncoder().encode(id)))) {
        const existing = await entries.get(PENDING, pendingKey);
        const existingId = existing ? new TextDecoder().decode(existing.value) : '';
        const found = existingId ? await this.#view(existingId, entries) : undefined;
        if (found?.status === 'pending' && found.task_id === record.id && found.scope === scope) {
          return { merged: found };
        }
        // A stale marker (decided meanwhile): this request takes its place.
        await entries.put(PENDING, pendingKey, new TextEncoder().encode(id));
      }
      const pending = await entries.list(PENDING, `${record.id}|`, { limit: MAX_PENDING_PER_TASK + 1 });
      if (pending.length > MAX_PENDING_PER_TASK) throw new CustosError('CUSTOS_ERR_REQUEST_LIMIT');
      await entries.put(REQUESTS, id, sealJson(this.#cipher, REQUESTS, id, created));
      return { merged: undefined };
    });
    if (outcome.merged) return { request: outcome.merged, created: false };
    const request = await this.show(id);
    this.#announce('request.created', request);
    return { request, created: true };
  }

  async show(id: string): Promise<AccessRequest> {
    const view = await this.#view(id, this.#storage.entries);
    if (!view) throw new NotFoundError();
    return view;
  }

  /** Newest first, at most `limit`, optionally only one status and/or one task's. */
  async list(filter: { status?: AccessRequestStatus; taskId?: string; limit?: number } = {}): Promise<AccessRequest[]> {
    const keys = filter.status === 'pending' ? await this.#pendingIds() : await this.#newestIds();
    const out: AccessRequest[] = [];
    const limit = filter.limit ?? 500;
    for (const key of keys) {
      const view = await this.#view(key, this.#storage.entries);
      if (!view) continue;
      if (filter.taskId !== undefined && view.task_id !== filter.taskId) continue;
      if (filter.status !== undefined && view.status !== filter.status) continue;
      out.push(view);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * The ids of the newest {@link LIST_SCAN} requests, newest first. The
   * store lists keys ascending only, and ids sort by creation time, so this
   * pages through every key (keys only, no values, {@link LIST_PAGE} a
   * round trip) and keeps the last ones: reading only the first page would
   * show the *oldest* requests and hide every new one once there are more
   * (which a task could force by filing and withdrawing requests). The cost
   * is one cheap key range scan per page, linear in the requests kept.
   */
  async #newestIds(): Promise<string[]> {
    let newest: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.#storage.entries.list(REQUESTS, '', {
        limit: LIST_PAGE,
        ...(after !== undefined ? { after } : {}),
      });
      newest = newest.concat(page).slice(-LIST_SCAN);
      if (page.length < LIST_PAGE) break;
      after = page[page.length - 1];
    }
    return newest.reverse();
  }

  /**
   * The ids of pending requests, newest first, from the pending index (one
   * marker per undecided request; at most {@link MAX_PENDING_PER_TASK} per
   * task, markers of decided ones freed by the reaper): bounded by live
   * work, not by how many requests were ever made, so the approvers' queue
   * never misses a new request however many old ones there are.
   */
  async #pendingIds(): Promise<string[]> {
    const ids: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.#storage.entries.scan(PENDING, '', {
        limit: LIST_PAGE,
        ...(after !== undefined ? { after } : {}),
      });
      for (const entry of page) ids.push(new TextDecoder().decode(entry.value));
      if (page.length < LIST_PAGE) break;
      after = page[page.length - 1]?.key;
    }
    // Ids begin with their creation time: descending order is newest first.
    return ids.sort().reverse();
  }

  /**
   * Records one approval; the one that reaches the count decides. Refused
   * for the requester, its tree and its identity; for a decided request;
   * for a task that is over; for a widening of what was asked (or of what
   * an earlier approver approved).
   */
  async approve(id: string, decider: Decider, input: ApprovalInput = {}): Promise<AccessRequest> {
    const record = await this.#record(id);
    const person = await this.#assertMayDecide(record, decider);
    if (await this.#storage.entries.get(DECISIONS, id)) throw new CustosError('CUSTOS_ERR_REQUEST_ALREADY_DECIDED');
    // An undecided request of a task that is over shows as expired; approving it is refused by that name.
    await this.#assertTaskLive(record);
    const scope = input.scope !== undefined ? normaliseRequestScope(input.scope) : record.scope;
    if (!scopeWithin(scope, record.scope)) throw new CustosError('CUSTOS_ERR_REQUEST_WIDENING');
    const ttl = input.ttlSeconds ?? record.ttl_seconds;
    if (!Number.isInteger(ttl) || ttl < 1) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    if (ttl > record.ttl_seconds) throw new CustosError('CUSTOS_ERR_REQUEST_WIDENING');
    if (input.children === true && !record.children) throw new CustosError('CUSTOS_ERR_REQUEST_WIDENING');
    const children = input.children ?? record.children;
    const now = this.#now();
    const vote: ApprovalVote = { by: decider.name, at: new Date(now).toISOString(), scope, ttl_seconds: ttl, children };

    const decided = await this.#storage.transaction(async ({ entries }) => {
      if (await entries.get(DECISIONS, id)) throw new CustosError('CUSTOS_ERR_REQUEST_ALREADY_DECIDED');
      const voteKey = `${id}|${person}`;
      // Each approver counts once: a second approval by the same person (the
      // same token, or another token of its creator chain) is an answer, not a vote.
      await entries.putIfAbsent(APPROVALS, voteKey, sealJson(this.#cipher, APPROVALS, voteKey, vote));
      const votes = await this.#votes(id, entries);
      if (votes.length < record.approvals_required) return undefined;
      // No approver's approval is used for more than it approved: the
      // narrowest scope (which must lie within every other one), the
      // shortest TTL, children only if every approver said so.
      const narrowest = votes.reduce((a, b) => (scopeWithin(b.scope, a.scope) ? b : a));
      if (!votes.every((v) => scopeWithin(narrowest.scope, v.scope))) {
        throw new CustosError('CUSTOS_ERR_REQUEST_WIDENING');
      }
      const ttlSeconds = Math.min(...votes.map((v) => v.ttl_seconds));
      const allChildren = votes.every((v) => v.children);
      const expiresAt = Math.min(now + ttlSeconds * 1000, record.task_expires_at);
      const decision: AccessDecisionRecord = {
        outcome: 'approved',
        by: decider.name,
        at: vote.at,
        scope: narrowest.scope,
        ttl_seconds: ttlSeconds,
        children: allChildren,
        expires_at: expiresAt,
      };
      if (!(await entries.putIfAbsent(DECISIONS, id, sealJson(this.#cipher, DECISIONS, id, decision)))) {
        throw new CustosError('CUSTOS_ERR_REQUEST_ALREADY_DECIDED');
      }
      const elevation: ActiveElevation = {
        request_id: id,
        task_id: record.task_id,
        scope: narrowest.scope,
        children: allChildren,
        expires_at: expiresAt,
      };
      await this.#elevations.write(entries, elevation);
      await this.#clearPending(entries, record);
      return elevation;
    });
    if (decided) this.#elevations.added(decided);
    const view = await this.show(id);
    if (decided) this.#announce('request.approved', view);
    return view;
  }

  /** Denies a pending request: final, whatever approvals it had. */
  async deny(id: string, decider: Decider, reason?: string): Promise<AccessRequest> {
    const record = await this.#record(id);
    await this.#assertMayDecide(record, decider);
    const denyReason = reason?.trim();
    if (denyReason !== undefined && (denyReason.length > MAX_REASON_LENGTH || CONTROL.test(denyReason))) {
      throw new ValidationError(`reason is at most ${MAX_REASON_LENGTH} characters without control characters.`);
    }
    const current = await this.show(id);
    if (current.status !== 'pending') throw new CustosError('CUSTOS_ERR_REQUEST_ALREADY_DECIDED');
    const decision: AccessDecisionRecord = {
      outcome: 'denied',
      by: decider.name,
      at: new Date(this.#now()).toISOString(),
      ...(denyReason ? { deny_reason: denyReason } : {}),
    };
    await this.#storage.transaction(async ({ entries }) => {
      if (!(await entries.putIfAbsent(DECISIONS, id, sealJson(this.#cipher, DECISIONS, id, decision)))) {
        throw new CustosError('CUSTOS_ERR_REQUEST_ALREADY_DECIDED');
      }
      await this.#clearPending(entries, record);
    });
    const view = await this.show(id);
    this.#announce('request.denied', view);
    return view;
  }

  /**
   * Ends an approved request's elevation at once (deletes its entry, which
   * every node checks before using it), or withdraws a pending one. An
   * approver of the request may do it, and so may the requesting task
   * itself and the operator it acts for — giving up privilege is always allowed.
   */
  async revoke(id: string, decider: Decider): Promise<AccessRequest> {
    const record = await this.#record(id);
    // Giving up privilege is always allowed: the task itself, and the
    // operator it acts for (who may not approve it, but may end it).
    const own =
      (decider.kind === 'task' && decider.name === `task:${record.task_id}`) ||
      (decider.kind === 'operator' && decider.name === record.identity);
    if (!own) await this.#assertMayDecide(record, decider);
    const current = await this.show(id);
    if (current.status !== 'approved' && current.status !== 'pending') {
      throw new CustosError('CUSTOS_ERR_REQUEST_ALREADY_DECIDED');
    }
    const at = new Date(this.#now()).toISOString();
    const removed = await this.#storage.transaction(async ({ entries }) => {
      if (!(await entries.putIfAbsent(REVOKED, id, sealJson(this.#cipher, REVOKED, id, { by: decider.name, at })))) {
        throw new CustosError('CUSTOS_ERR_REQUEST_ALREADY_DECIDED');
      }
      // A pending one gets a decision too, so no approval can land after the withdrawal.
      await entries.putIfAbsent(
        DECISIONS,
        id,
        sealJson(this.#cipher, DECISIONS, id, {
          outcome: 'denied',
          by: decider.name,
          at,
        } satisfies AccessDecisionRecord),
      );
      await this.#clearPending(entries, record);
      return this.#elevations.erase(entries, id);
    });
    if (removed) this.#elevations.removed(id, record.task_id);
    const view = await this.show(id);
    this.#announce('request.revoked', view);
    return view;
  }

  /**
   * Waits until the request is no longer pending, or `timeoutMs` passed;
   * returns its view either way. Woken at once by a decision on this node,
   * and looks again every second for one made on another node.
   */
  async wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<AccessRequest> {
    const deadline = this.#now() + timeoutMs;
    for (;;) {
      const view = await this.show(id);
      const left = deadline - this.#now();
      if (view.status !== 'pending' || left <= 0 || signal?.aborted) return view;
      await new Promise<void>((resolve) => {
        const set = this.#waiters.get(id) ?? new Set();
        this.#waiters.set(id, set);
        const done = () => {
          clearTimeout(timer);
          set.delete(done);
          if (set.size === 0) this.#waiters.delete(id);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 1_000));
        set.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  /**
   * The reaper's round: elevations that ran out and pending requests whose
   * task is over are announced as `request.expired` and their entries freed.
   */
  async sweep(limit = 200): Promise<number> {
    let n = 0;
    for (const key of await this.#storage.entries.list(PENDING, '', { limit })) {
      const entry = await this.#storage.entries.get(PENDING, key);
      const id = entry ? new TextDecoder().decode(entry.value) : '';
      const view = id ? await this.#view(id, this.#storage.entries).catch(() => undefined) : undefined;
      if (view?.status === 'pending') continue;
      await this.#storage.entries.delete(PENDING, key);
      if (view?.status === 'expired') {
        this.#announce('request.expired', view);
        n++;
      }
    }
    const now = this.#now();
    for (const key of await this.#storage.entries.listExpired('jit.elevation', now, limit)) {
      const view = await this.#view(key, this.#storage.entries).catch(() => undefined);
      const removed = await this.#storage.transaction(({ entries }) => this.#elevations.erase(entries, key));
      if (removed && view) {
        this.#elevations.removed(key, view.task_id);
        this.#announce('request.expired', view);
        n++;
      }
    }
    return n;
  }

  /** Throws unless `decider` may decide `record`; returns the person its vote counts as. */
  async #assertMayDecide(record: AccessRequestRecord, decider: Decider): Promise<string> {
    // Approval is a human's act on an agent's request: no task decides one,
    // and a task of the requester's own tree is told so by name.
    if (decider.kind === 'task') {
      if (decider.chain.some((t) => record.chain[0] === t)) throw new CustosError('CUSTOS_ERR_REQUEST_SELF_APPROVAL');
      throw new CustosError('CUSTOS_ERR_PERMISSION_DENIED');
    }
    // The operator the task tree acts for (an operator-started task's
    // identity is `token:<accessor>`) is the requester in person — and so is
    // any token of its creator chain: who can mint a token can act through
    // it, so a child token (or the parent) of the requester is refused, and
    // two tokens of one chain are one person (one vote).
    if (decider.name === record.identity) throw new CustosError('CUSTOS_ERR_REQUEST_SELF_APPROVAL');
    const lineage = await this.#lineage(decider.name);
    const person = lineage[lineage.length - 1] ?? decider.name;
    const requester = record.identity_lineage ?? (await this.#lineage(record.identity));
    if (lineage.includes(record.identity) || requester.includes(person) || requester.at(-1) === person) {
      throw new CustosError('CUSTOS_ERR_REQUEST_SELF_APPROVAL');
    }
    // The root token bypasses policy here as everywhere (and is audited as root).
    if (decider.root) return person;
    if (record.approver_policies.length > 0 && !record.approver_policies.some((p) => decider.policies.includes(p))) {
      throw new CustosError('CUSTOS_ERR_PERMISSION_DENIED');
    }
    for (const resource of approveResources(parseScope(record.scope))) {
      if (!decider.mayApprove(resource)) throw new CustosError('CUSTOS_ERR_PERMISSION_DENIED');
    }
    return person;
  }

  async #assertTaskLive(record: AccessRequestRecord): Promise<void> {
    if (record.task_expires_at <= this.#now() || !(await this.#tasks.isActive(record.chain)).active) {
      throw new CustosError('CUSTOS_ERR_REQUEST_TASK_ENDED');
    }
  }

  async #clearPending(entries: EntryStore, record: AccessRequestRecord): Promise<void> {
    const key = `${record.task_id}|${createHash('sha256').update(record.scope).digest('hex').slice(0, 32)}`;
    const marker = await entries.get(PENDING, key);
    if (marker && new TextDecoder().decode(marker.value) === record.id) await entries.delete(PENDING, key);
  }

  async #record(id: string, entries: EntryStore = this.#storage.entries): Promise<AccessRequestRecord> {
    if (!REQUEST_ID.test(id)) throw new NotFoundError();
    const entry = await entries.get(REQUESTS, id);
    if (!entry) throw new NotFoundError();
    return openJson<AccessRequestRecord>(this.#cipher, REQUESTS, id, entry.value);
  }

  async #votes(id: string, entries: EntryStore): Promise<ApprovalVote[]> {
    const out: ApprovalVote[] = [];
    for (const entry of await entries.scan(APPROVALS, `${id}|`, { limit: 100 })) {
      out.push(await openJson<ApprovalVote>(this.#cipher, APPROVALS, entry.key, entry.value));
    }
    return out;
  }

  async #view(id: string, entries: EntryStore): Promise<AccessRequest | undefined> {
    if (!REQUEST_ID.test(id)) return undefined;
    const entry = await entries.get(REQUESTS, id);
    if (!entry) return undefined;
    const record = await openJson<AccessRequestRecord>(this.#cipher, REQUESTS, id, entry.value);
    const decisionEntry = await entries.get(DECISIONS, id);
    const decision = decisionEntry
      ? await openJson<AccessDecisionRecord>(this.#cipher, DECISIONS, id, decisionEntry.value)
      : undefined;
    const revokedEntry = await entries.get(REVOKED, id);
    const revoked = revokedEntry
      ? await openJson<{ by: string; at: string }>(this.#cipher, REVOKED, id, revokedEntry.value)
      : undefined;
    const votes = await this.#votes(id, entries);
    const now = this.#now();
    const taskState = await this.#tasks.isActive(record.chain, entries);
    const taskOver = !taskState.active || record.task_expires_at <= now;
    let status: AccessRequestStatus;
    if (revoked) status = 'revoked';
    else if (!decision) status = taskOver ? 'expired' : 'pending';
    else if (decision.outcome === 'denied') status = 'denied';
    else if (!taskState.active && taskState.state === 'revoked') status = 'revoked';
    else status = taskOver || (decision.expires_at ?? 0) <= now ? 'expired' : 'approved';
    const approved = decision?.outcome === 'approved' ? decision : undefined;
    return {
      id: record.id,
      status,
      task_id: record.task_id,
      chain: record.chain,
      identity: record.identity,
      role: record.role,
      scope: approved?.scope ?? record.scope,
      reason: record.reason,
      ttl_seconds: approved?.ttl_seconds ?? record.ttl_seconds,
      children: approved?.children ?? record.children,
      approvals_required: record.approvals_required,
      // A decided request shows the approvals that counted; a late vote on a denied one shows too (it changed nothing).
      approvals: votes.map((v) => ({ by: v.by, at: v.at }) satisfies AccessApproval),
      created_at: record.created_at,
      ...(decision ? { decided_at: decision.at, decided_by: decision.by } : {}),
      ...(approved?.expires_at !== undefined ? { expires_at: new Date(approved.expires_at).toISOString() } : {}),
      ...(decision?.deny_reason ? { deny_reason: decision.deny_reason } : {}),
      ...(revoked ? { revoked_at: revoked.at, revoked_by: revoked.by } : {}),
      ...(approved?.scope && approved.scope !== record.scope ? { requested_scope: record.scope } : {}),
    };
  }

  #announce(type: AccessRequestNotice['type'], request: AccessRequest): void {
    const notice: AccessRequestNotice = {
      type,
      id: request.id,
      task_id: request.task_id,
      scope: request.scope,
      status: request.status,
    };
    this.#events?.publish({ ...notice, path: requestResource(request.id), time: new Date(this.#now()).toISOString() });
    if (type === 'request.created') {
      try {
        this.#notify?.(notice);
      } catch {
        // A notification channel's failure never fails the request.
      }
    }
    for (const wake of this.#waiters.get(request.id) ?? []) wake();
  }
}

interface ApprovalVote {
  readonly by: string;
  readonly at: string;
  readonly scope: string;
  readonly ttl_seconds: number;
  readonly children: boolean;
}

/** `req_<12 hex of time><20 hex random>`: sortable by creation, unguessable. */
const REQUEST_ID = /^req_[0-9a-f]{32}$/;

function newRequestId(now: number): string {
  return `req_${now.toString(16).padStart(12, '0')}${randomBytes(10).toString('hex')}`;
}
