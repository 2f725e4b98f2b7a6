import { type Cipher, openJson, sealJson } from '../common/cipher.js';
import { OpenedEntryMemo } from '../common/opened-entry-memo.js';
import { timeOrderedId } from '../common/random-pool.js';
import { TransactionBatcher } from '../common/transaction-batcher.js';
import { CustosError, NotFoundError, ValidationError } from '../errors/index.js';
import { formatScope, isScopeSubset, POLICY_ACTIONS, parseScope } from '../policy/index.js';
import type { EntryStore, Storage } from '../ports/storage.js';
import type { RoleService } from './role-service.js';
import type { Role } from './role-types.js';
import { TaskAccessors } from './task-accessor.js';
import { agentLabels, assertGrantable, childTaskLabels, rootTaskLabels, validateLabels } from './task-labels.js';
import { assertRoleAdmits, currentTaskLabels, isTaskOfRole, trustedLabels } from './task-standing.js';
import {
  type ActorClaim,
  type IssuedTask,
  TASK_RECORD_VERSION,
  type TaskRecord,
  type TaskState,
  type TaskView,
} from './task-types.js';

const TASKS = 'task';
const TREE = 'task.tree';
const STATE = 'task.state';
/** Accessor index rows of tasks created before accessors were computed (see {@link TaskAccessors}). */
const LEGACY_ACCESSORS = 'task.accessor';
const CASCADES = 'task.cascade';
/** Not a stored namespace: the AAD of list cursors, so no stored blob can pass for one. */
const CURSORS = 'task.list-cursor';

/** Stored task records read by one {@link TaskService.list} call, at most. */
export const TASK_LIST_SCAN = 500;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * How long an ended task (expired, revoked or ended) stays readable through
 * `task show`, `task tree` and its accessor after its expiry, before the
 * reaper deletes it. Its tokens are refused from the moment it ends; the
 * audit log keeps its history for good.
 */
export const TASK_RETENTION_MS = 15 * 60_000;

/** A task without an explicit scope holds its role's full grant: every action on every path, bounded by the role's policies. */
export const FULL_SCOPE = POLICY_ACTIONS.map((a) => `${a}:*`).join(' ');

/** The claims a task token carries, as the task service needs them. */
export interface TaskTokenSubject {
  sub: string;
  task_id: string;
  parent_task_id: string | null;
  scope: string;
  depth: number;
  role: string;
  chain: string[];
  act: ActorClaim | null;
  exp: number;
  jkt: string | null;
  /** The token's `aud` (set by the authenticator; introspection reports it). */
  aud?: string | readonly string[];
}

/** Signs task tokens (EdDSA JWTs); implemented over the task signing keys. */
export interface TaskTokenMinter {
  mint(task: TaskRecord, expSeconds: number): Promise<string>;
}

/**
 * Told when a subtree ends (a task and all its descendants), so the leases
 * they own (dynamic database users, …) are revoked. `prefix` is the
 * subtree's prefix in the task tree (see {@link taskTreePrefix}): stores that
 * index by it find a whole subtree with one prefix scan.
 */
export type TaskEndedHook = (subtree: { rootId: string; prefix: string }) => Promise<void>;

/** A task created, ended or revoked (by a call on this node), for the event stream. */
export interface TaskChange {
  change: 'created' | 'ended' | 'revoked';
  task: Pick<TaskRecord, 'id' | 'parent_id' | 'chain' | 'role'>;
}

/** Told of each {@link TaskChange} after it is durable; must not throw (errors are dropped). */
export type TaskChangeListener = (change: TaskChange) => void;

/** The tree prefix of a task: its chain of ids joined by `/`, with a trailing `/`. */
export const taskTreePrefix = (chain: readonly string[]) => `${chain.join('/')}/`;

export interface StartTaskRequest {
  role: Role;
  sub: string;
  via: string;
  ttlMs?: number;
  scope?: string;
  /**
   * Labels an operator granted this task: from its bootstrap token, its JWT
   * method's claim mapping, or the operator starting it. The caller checks
   * where they came from (see task-labels.ts); the role's labels win over them.
   */
  labels?: Record<string, string>;
  /** Labels the agent chose at login: `agent.…` keys only (checked here). */
  agentLabels?: Record<string, string>;
  jkt?: string | null;
}

type RoleLookup = (name: string) => Promise<Role | undefined>;
/** Which listing a cursor belongs to (its AAD): one cannot be replayed as the other. */
type CursorKind = 'all' | 'subtree';

/** Paging for {@link TaskService.list} and {@link TaskService.listSubtree}. */
export interface TaskListQuery {
  /** At most this many tasks in the page (default 100). */
  limit?: number;
  /** From the previous page's `cursor`. */
  cursor?: string;
  /** Which tasks the caller may see; the others are read but not returned. */
  filter?: (view: TaskView) => boolean;
}

/** A page of tasks; `cursor`, when present, continues after it (a page may be empty while there is one). */
export interface TaskPage {
  tasks: TaskView[];
  cursor?: string;
}

export interface DelegateRequest {
  scope?: string;
  ttlMs?: number;
  /** Labels the parent adds for its child: new `agent.…` keys only (checked here). */
  labels?: Record<string, string>;
  jkt?: string | null;
  /**
   * A registered resource's canonical URL (the caller checked it is one):
   * the child's tokens carry it as `aud` instead of custos's own audience.
   */
  audience?: string;
}

/**
 * Tasks: one unit of work each, with a short-lived identity that dies with
 * it. Tasks form trees by delegation, and a child never holds more than its
 * parent (scope subset, TTL no longer, depth capped by the role).
 *
 * **Revocation is O(1) and takes effect at once.** Every request made with a
 * task token checks the task *and each of its ancestors* for an end marker
 * (`isActive`), so revoking a task writes one marker and every token of the
 * whole subtree is refused from the next request on, on every node, however
 * large the tree. The work that is proportional to the tree (revoking the
 * leases its tasks own) then runs as a *cascade* that is recorded in the same
 * transaction as the marker and resumed after a crash.
 */
export class TaskService {
  readonly #storage: Pick<Storage, 'entries' | 'transaction'>;
  readonly #cipher: Cipher;
  /** A parent task record is read on every delegation: opened once per stored version, not decrypted every time. */
  readonly #opened = new OpenedEntryMemo();
  readonly #roles: RoleService;
  readonly #accessors: TaskAccessors;
  readonly #minter: TaskTokenMinter;
  readonly #now: () => number;
  readonly #onEnded: TaskEndedHook[] = [];
  readonly #onChange: TaskChangeListener[] = [];
  /** Task creation is insert-only, so concurrent mints share one commit. */
  readonly #creates: TransactionBatcher;

  constructor(deps: {
    storage: Pick<Storage, 'entries' | 'transaction'>;
    cipher: Cipher;
    roles: RoleService;
    minter: TaskTokenMinter;
    /** 32 bytes kept behind the barrier: accessors are task ids encrypted under it. */
    accessorKey: Uint8Array;
    now?: () => number;
  }) {
    this.#storage = deps.storage;
    this.#cipher = deps.cipher;
    this.#roles = deps.roles;
    this.#accessors = new TaskAccessors(deps.accessorKey);
    this.#minter = deps.minter;
    this.#now = deps.now ?? Date.now;
    this.#creates = new TransactionBatcher(deps.storage);
  }

  /** Registers a hook run (at least once) for every task that ends, is revoked or expires. */
  onTaskEnded(hook: TaskEndedHook): void {
    this.#onEnded.push(hook);
  }

  /**
   * Registers a listener told of every task this node creates, ends or
   * revokes, once the change is committed (the console's live tree). Not
   * told of expiries, nor of changes made through another node.
   */
  onTaskChange(listener: TaskChangeListener): void {
    this.#onChange.push(listener);
  }

  #changed(change: TaskChange['change'], record: TaskRecord): void {
    const task = { id: record.id, parent_id: record.parent_id, chain: record.chain, role: record.role };
    for (const listener of this.#onChange) {
      try {
        listener({ change, task });
      } catch {
        // A listener's fault must not fail the task operation that already committed.
      }
    }
  }

  /** Starts a root task for a role (after a login or by an operator). */
  async start(request: StartTaskRequest): Promise<IssuedTask> {
    const { role } = request;
    // Every way into a role ends here (bootstrap, JWT and certificate
    // logins, operator starts): after the credential was verified, so only
    // its holder learns of the suspension.
    assertRoleAdmits(role, request.sub);
    const ttlMs = request.ttlMs ?? role.default_ttl_ms;
    if (!Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > role.max_ttl_ms) {
      throw new CustosError('CUSTOS_ERR_INVALID_TTL', 'The TTL exceeds the role’s max_ttl.');
    }
    const scope = request.scope ? formatScope(parseScope(request.scope)) : FULL_SCOPE;
    // Whatever granted them (operator start, bootstrap token, claim mapping),
    // only keys the role lets others grant get in.
    const granted = validateLabels(request.labels);
    assertGrantable(role, granted);
    const id = newTaskId();
    const record: TaskRecord = {
      id,
      parent_id: null,
      chain: [id],
      depth: 0,
      role: role.name,
      sub: request.sub,
      scope,
      labels: rootTaskLabels({ role: role.labels ?? {}, granted, agent: agentLabels(request.agentLabels) }),
      ...roleLabelKeys(role, granted),
      accessor: this.#accessors.of(id),
      act: null,
      jkt: request.jkt ?? null,
      created_time: new Date(this.#now()).toISOString(),
      expires_at: this.#now() + ttlMs,
      via: request.via,
      ...(role.id ? { role_id: role.id } : {}),
      v: TASK_RECORD_VERSION,
    };
    return this.#create(record);
  }

  /**
   * Mints a child task for a sub-agent. A request for more than the parent
   * holds is refused, never silently narrowed: the caller learns at once
   * that its plan needs more than it has.
   */
  async delegate(parent: TaskTokenSubject, request: DelegateRequest, parentRole?: Role): Promise<IssuedTask> {
    const parentRecord = await this.#get(parent.task_id);
    // The caller usually has the role already (it authenticated the parent).
    const role = parentRole?.name === parentRecord.role ? parentRole : await this.#roles.read(parentRecord.role);
    // A parent of a deleted (maybe recreated) role, or whose labels its agent
    // chose under an earlier build, has nothing it may hand down.
    const parentLabels = trustedLabels(parentRecord);
    if (!isTaskOfRole(parentRecord, role) || !parentLabels) throw new CustosError('CUSTOS_ERR_UNAUTHENTICATED');
    // The child would carry the parent's identity: a suspended one hands nothing down.
    assertRoleAdmits(role, parentRecord.sub);
    if (parentRecord.depth + 1 > role.max_depth) throw new CustosError('CUSTOS_ERR_DELEGATION_DEPTH');
    const state = await this.isActive(parentRecord.chain);
    if (!state.active) throw new CustosError('CUSTOS_ERR_UNAUTHENTICATED');
    const parentScope = parseScope(parentRecord.scope);
    const requested = request.scope ? parseScope(request.scope) : parentScope;
    const scope = request.scope ? formatScope(requested) : parentRecord.scope;
    if (!isScopeSubset(requested, parentScope)) {
      throw new CustosError('CUSTOS_ERR_SCOPE_EXCEEDS_PARENT');
    }
    const now = this.#now();
    const parentRemaining = parentRecord.expires_at - now;
    const ttlMs = request.ttlMs ?? parentRemaining;
    if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
    if (ttlMs > parentRemaining) throw new CustosError('CUSTOS_ERR_TTL_EXCEEDS_PARENT');
    const id = newTaskId();
    const record: TaskRecord = {
      id,
      parent_id: parentRecord.id,
      chain: [...parentRecord.chain, id],
      depth: parentRecord.depth + 1,
      role: parentRecord.role,
      sub: parentRecord.sub,
      scope,
      // Inherited exactly; the parent may add agent labels, never change one.
      labels: childTaskLabels(parentLabels, request.labels),
      ...(parentRecord.role_label_keys ? { role_label_keys: parentRecord.role_label_keys } : {}),
      accessor: this.#accessors.of(id),
      act: { sub: parentRecord.sub, task_id: parentRecord.id, ...(parentRecord.act ? { act: parentRecord.act } : {}) },
      jkt: request.jkt !== undefined ? request.jkt : parentRecord.jkt,
      ...(request.audience !== undefined ? { audience: request.audience } : {}),
      created_time: new Date(now).toISOString(),
      expires_at: now + ttlMs,
      via: 'delegation',
      ...(parentRecord.role_id ? { role_id: parentRecord.role_id } : {}),
      v: TASK_RECORD_VERSION,
    };
    return this.#create(record);
  }

  /**
   * Whether every task of a chain is still live: none ended or revoked. One
   * indexed read per level (a chain is at most max_depth + 1 long). Inside a
   * transaction, pass its `entries`.
   */
  async isActive(
    chain: readonly string[],
    entries: EntryStore = this.#storage.entries,
  ): Promise<{ active: true } | { active: false; state: TaskState; by: string }> {
    for (const id of chain) {
      const marker = await entries.get(STATE, id);
      if (marker) {
        const { state } = await openJson<{ state: TaskState }>(this.#cipher, STATE, id, marker.value);
        return { active: false, state, by: id };
      }
    }
    return { active: true };
  }

  async show(id: string): Promise<TaskView> {
    return this.#view(await this.#get(id));
  }

  /** The task and every descendant, parents before children. */
  async tree(id: string, limit = 10_000): Promise<TaskView[]> {
    const root = await this.#get(id);
    const views: TaskView[] = [];
    const roleOf = this.#roleLookup();
    for (const key of await this.#storage.entries.list(TREE, treeKey(root.chain), { limit })) {
      const record = await this.#find(lastSegment(key));
      if (record) views.push(await this.#view(record, roleOf));
    }
    return views;
  }

  /**
   * One page of tasks in id order: at most `limit` of them,
   * from at most {@link TASK_LIST_SCAN} stored records read after `cursor`.
   * `filter` is the caller's visibility rule (who may see which task),
   * applied after the role and state filters and before the limit counts.
   * Id order is not creation order: a time-ordered id's leading bytes are
   * the time, but its base64url text does not sort as its bytes do.
   *
   * Why a bound on records *read*, not only on tasks returned: the
   * visibility rule may cost a policy decision per record, each on its own
   * path (`sys/tasks/<id>`), so no memo can answer it; a caller who may see
   * few of many tasks would otherwise make one call run up to 10,000 of them.
   * `cursor` in the answer (absent at the end) continues after the last
   * record read. It is sealed by the barrier: it names a position, and must
   * not give away the id of a task the caller may not see.
   */
  async list(query: TaskListQuery & { role?: string; state?: TaskState } = {}): Promise<TaskPage> {
    const after = query.cursor === undefined ? undefined : await this.#openCursor('all', query.cursor);
    const entries = await this.#storage.entries.scan(TASKS, '', {
      limit: TASK_LIST_SCAN,
      ...(after ? { after } : {}),
    });
    const wanted = (view: TaskView) =>
      (!query.role || view.role === query.role) &&
      (!query.state || view.state === query.state) &&
      (!query.filter || query.filter(view));
    return this.#page(
      'all',
      entries.map((entry) => ({
        key: entry.key,
        load: () => openJson<TaskRecord>(this.#cipher, TASKS, entry.key, entry.value),
      })),
      wanted,
      query.limit ?? 100,
    );
  }

  /**
   * One page of a task's subtree (the task and its descendants, parents
   * before children), read as {@link list} reads: at most
   * {@link TASK_LIST_SCAN} tasks per call, `cursor` to continue. A task may
   * mint thousands of children; listing them must not cost thousands of
   * reads in one request.
   */
  async listSubtree(id: string, query: TaskListQuery = {}): Promise<TaskPage> {
    const root = await this.#get(id);
    const after = query.cursor === undefined ? undefined : await this.#openCursor('subtree', query.cursor);
    // Keys outside the subtree's prefix are never listed, whatever the cursor says.
    const keys = await this.#storage.entries.list(TREE, treeKey(root.chain), {
      limit: TASK_LIST_SCAN,
      ...(after ? { after } : {}),
    });
    return this.#page(
      'subtree',
      keys.map((key) => ({ key, load: () => this.#find(lastSegment(key)) })),
      query.filter ?? (() => true),
      query.limit ?? 100,
    );
  }

  async #page(
    kind: CursorKind,
    read: { key: string; load: () => Promise<TaskRecord | undefined> }[],
    wanted: (view: TaskView) => boolean,
    limit: number,
  ): Promise<TaskPage> {
    const tasks: TaskView[] = [];
    const roleOf = this.#roleLookup();
    let last: string | undefined;
    for (const { key, load } of read) {
      last = key;
      const record = await load();
      if (!record) continue;
      const view = await this.#view(record, roleOf);
      if (!wanted(view)) continue;
      tasks.push(view);
      if (tasks.length >= limit) break;
    }
    // More may follow unless the read came back short and was taken to its end.
    const more = read.length === TASK_LIST_SCAN || last !== read.at(-1)?.key;
    return more && last !== undefined ? { tasks, cursor: this.#sealCursor(kind, last) } : { tasks };
  }

  #sealCursor(kind: CursorKind, after: string): string {
    return Buffer.from(sealJson(this.#cipher, CURSORS, kind, { after })).toString('base64url');
  }

  async #openCursor(kind: CursorKind, cursor: string): Promise<string> {
    const opened = /^[A-Za-z0-9_-]{1,512}$/.test(cursor)
      ? await openJson<{ after?: unknown }>(this.#cipher, CURSORS, kind, Buffer.from(cursor, 'base64url')).catch(
          () => undefined,
        )
      : undefined;
    if (typeof opened?.after !== 'string') throw new ValidationError('The cursor is not valid.');
    return opened.after;
  }

  async findByAccessor(accessor: string): Promise<TaskView> {
    const id = this.#accessors.idOf(accessor);
    if (!id) throw new NotFoundError();
    let record = await this.#find(id);
    if (!record) {
      // A task made before accessors were computed is found by its index row.
      const entry = await this.#storage.entries.get(LEGACY_ACCESSORS, accessor);
      const legacy = entry && (await openJson<{ id: string }>(this.#cipher, LEGACY_ACCESSORS, accessor, entry.value));
      record = legacy && (await this.#find(legacy.id));
    }
    // The sealed record must name this accessor: anything else finds nothing.
    if (record?.accessor !== accessor) throw new NotFoundError();
    return this.#view(record);
  }

  /**
   * Revokes a task and, with it, its whole subtree: one marker makes every
   * token below it unusable at once; the cascade (descendant markers and
   * lease revocation) is recorded first and then run.
   */
  async revoke(id: string, by: string): Promise<TaskView> {
    return this.#end(id, 'revoked', by);
  }

  /**
   * Revokes every live root task of a deleted role (and so, by cascade,
   * their subtrees and leases): deleting a role ends its tasks. Only tasks of
   * that incarnation are touched, so a namesake created meanwhile keeps its
   * own. Their tokens are refused already, by the incarnation check on every
   * use; this makes the end recorded and drops their credentials now rather
   * than at expiry. Reads every task record (roles are deleted rarely); a
   * run cut short leaves the rest to expire, refused all the same.
   */
  async revokeRoleTasks(role: Pick<Role, 'name' | 'id'>, by: string, page = 500): Promise<number> {
    let revoked = 0;
    let after: string | undefined;
    for (;;) {
      const entries = await this.#storage.entries.scan(TASKS, '', { limit: page, ...(after ? { after } : {}) });
      for (const entry of entries) {
        // Not through the memo: one pass over every task must not push live ones out of it.
        const record = await openJson<TaskRecord>(this.#cipher, TASKS, entry.key, entry.value).catch(() => undefined);
        if (!record || record.parent_id !== null || !isTaskOfRole(record, role)) continue;
        if (record.expires_at <= this.#now() || !(await this.isActive([record.id])).active) continue;
        try {
          await this.#end(record.id, 'revoked', by);
          revoked++;
        } catch (error) {
          // Reaped meanwhile: nothing left to end.
          if (!(error instanceof NotFoundError)) throw error;
        }
      }
      if (entries.length < page) return revoked;
      after = entries[entries.length - 1]?.key;
    }
  }

  /** The task's work is done: like revoke, recorded as `ended`. */
  async end(id: string, by: string): Promise<TaskView> {
    return this.#end(id, 'ended', by);
  }

  /**
   * Extends a task's lifetime, within its role's max_ttl from creation and
   * never past its parent. Tokens already issued keep their own `exp`; the
   * task fetches a fresh one with {@link reissue}.
   */
  async extend(id: string, ttlMs: number): Promise<TaskView> {
    const record = await this.#get(id);
    const role = await this.#roles.read(record.role);
    // A task of a deleted role is over, even if a namesake exists now.
    if (!isTaskOfRole(record, role)) throw new NotFoundError();
    const now = this.#now();
    // An expired task stays dead, even before the reaper has marked it.
    if (record.expires_at <= now) throw new NotFoundError();
    let limit = Date.parse(record.created_time) + role.max_ttl_ms;
    if (record.parent_id) limit = Math.min(limit, (await this.#get(record.parent_id)).expires_at);
    if (ttlMs <= 0 || now + ttlMs > limit)
      throw new CustosError('CUSTOS_ERR_INVALID_TTL', 'Beyond the role or parent limit.');
    record.expires_at = now + ttlMs;
    await this.#storage.transaction(async ({ entries }) => {
      // Checked again where it is written, so a revocation or the reaper
      // cannot slip in between (on PostgreSQL the read locks the row).
      const current = await this.#find(id, entries);
      if (!current || current.expires_at <= now) throw new NotFoundError();
      if (!(await this.isActive(record.chain, entries)).active) throw new NotFoundError();
      await entries.put(TASKS, id, sealJson(this.#cipher, TASKS, id, record), { expiresAt: record.expires_at });
    });
    return this.#view(record);
  }

  /** A fresh token for a live task (after {@link extend}). */
  async reissue(id: string): Promise<IssuedTask> {
    const record = await this.#get(id);
    if (record.expires_at <= this.#now() || !(await this.isActive(record.chain)).active) {
      throw new CustosError('CUSTOS_ERR_UNAUTHENTICATED');
    }
    // A task just created is live: its chain was checked (delegate) or is
    // itself alone (start), so its view needs no storage reads.
    return {
      token: await this.#minter.mint(record, Math.floor(record.expires_at / 1000)),
      task: this.#viewOf(record, { active: true }),
    };
  }

  /** The stored record (for the auth path: role, chain, jkt). */
  async record(id: string): Promise<TaskRecord> {
    return this.#get(id);
  }

  /**
   * Runs recorded cascades: tells the lease hooks about each ended subtree.
   * Idempotent (hooks must tolerate repeats), so a cascade cut short by a
   * crash is simply run again. Runs them all, `batch` listed at a time;
   * returns how many ran.
   */
  async runCascades(batch = 100): Promise<number> {
    let done = 0;
    for (;;) {
      const due = await this.#storage.entries.scan(CASCADES, '', { limit: batch });
      const ran: string[] = [];
      try {
        for (const entry of due) {
          done += await this.#runHooks(entry.key, entry.value);
          ran.push(entry.key);
        }
      } finally {
        // One commit for the round rather than one per cascade (the reaper
        // ends thousands of tasks at a time). Cascades whose hooks ran before
        // a failure are forgotten too; the failed one stays for next time.
        if (ran.length > 0) {
          await this.#storage.transaction(async ({ entries }) => {
            for (const id of ran) await entries.delete(CASCADES, id);
          });
        }
      }
      // Every round forgets what it ran (or throws), so this ends.
      if (due.length < batch) return done;
    }
  }

  /**
   * The reaper's part for tasks; safe to run on several nodes at once. In
   * two passes over the expiry index, `batch` tasks per transaction:
   * 1. A task whose `exp` has passed (its tokens are refused by `exp`
   *    already) is marked expired, its cascade recorded (the leases of its
   *    subtree), and it is kept for {@link TASK_RETENTION_MS}.
   * 2. After that, its record, tree row and marker are deleted: storage holds
   *    live tasks and recent ones, not every task ever made.
   * Every due task is handled, however many; returns how many were.
   */
  async reapExpired(batch = 500): Promise<number> {
    let reaped = 0;
    for (;;) {
      const now = this.#now();
      const due = await this.#storage.entries.listExpired(TASKS, now, batch);
      if (due.length === 0) break;
      const handled = await this.#storage.transaction(async ({ entries }) => {
        let n = 0;
        for (const id of due) n += await this.#reapOne(entries, id, now);
        return n;
      });
      reaped += handled;
      // Every task handled leaves this listing (its expiry moves on, or it
      // is deleted), at most twice each, so this ends; a round that handled
      // nothing (rows another node just took) would only repeat itself.
      if (handled === 0) break;
    }
    await this.runCascades();
    return reaped;
  }

  async #reapOne(entries: EntryStore, id: string, now: number): Promise<number> {
    const entry = await entries.get(TASKS, id);
    // Gone or moved on since it was listed: another node handled it.
    if (entry?.expiresAt == null || entry.expiresAt > now) return 0;
    let record: TaskRecord;
    try {
      // Not through the memo: reaping thousands of old records must not push live ones out of it.
      record = await openJson<TaskRecord>(this.#cipher, TASKS, id, entry.value);
    } catch {
      // A record that fails its integrity check is left for an operator to
      // see, and looked at again only after a retention period, so that a
      // run of them cannot stall the reaper at the head of the listing.
      await entries.put(TASKS, id, entry.value, { expiresAt: now + TASK_RETENTION_MS });
      return 1;
    }
    if (entry.expiresAt <= record.expires_at) {
      // A revoked or ended task was marked, and its cascade recorded, when it ended.
      if (await this.#mark(entries, id, 'expired', id)) await this.#recordCascade(entries, record);
      await entries.put(TASKS, id, entry.value, { expiresAt: record.expires_at + TASK_RETENTION_MS });
    } else {
      // Its cascade, if still pending, holds the subtree prefix and runs without the record.
      await entries.delete(TASKS, id);
      await entries.delete(TREE, treeKey(record.chain));
      await entries.delete(STATE, id);
      if (this.#accessors.idOf(record.accessor) !== id) await entries.delete(LEGACY_ACCESSORS, record.accessor);
    }
    return 1;
  }

  async #create(record: TaskRecord): Promise<IssuedTask> {
    await this.#creates.run(async ({ entries }) => {
      await entries.put(TASKS, record.id, sealJson(this.#cipher, TASKS, record.id, record), {
        expiresAt: record.expires_at,
      });
      // The tree index holds ids only (not secret): a prefix scan lists a
      // subtree. It needs no expiry of its own: the reaper deletes it with the
      // task. The accessor needs no row at all (see TaskAccessors).
      await entries.put(TREE, treeKey(record.chain), encoder.encode(record.id));
    });
    this.#changed('created', record);
    // A task just created is live: its chain was checked (delegate) or is
    // itself alone (start), so its view needs no storage reads.
    return {
      token: await this.#minter.mint(record, Math.floor(record.expires_at / 1000)),
      task: this.#viewOf(record, { active: true }),
    };
  }

  async #end(id: string, state: 'ended' | 'revoked', by: string): Promise<TaskView> {
    const record = await this.#get(id);
    await this.#storage.transaction(async ({ entries }) => {
      // Deleted by the reaper since it was read: no marker for a task that is gone.
      if (!(await entries.get(TASKS, id))) throw new NotFoundError();
      // The cascade is recorded in the same transaction as the marker, so a
      // crash right after cannot leave a revoked task whose leases live on.
      await this.#mark(entries, id, state, by);
      await this.#recordCascade(entries, record);
    });
    this.#changed(state, record);
    await this.#cascade(id);
    return this.#view(record);
  }

  /**
   * The part of an end that depends on what the tree holds: telling the
   * lease hooks about the ended subtree. Descendants need no marker of their
   * own (their chains contain the ended task, which `isActive` checks), and
   * the hooks find the subtree's leases by its tree prefix, so this costs
   * what the leases cost, however many tasks the tree has.
   */
  async #cascade(id: string): Promise<number> {
    const entry = await this.#storage.entries.get(CASCADES, id);
    if (!entry) return 0;
    const ran = await this.#runHooks(id, entry.value);
    await this.#storage.entries.delete(CASCADES, id);
    return ran;
  }

  /** Tells the hooks about one ended subtree; 0 when there is nothing left to tell them about. */
  async #runHooks(id: string, cascade: Uint8Array): Promise<number> {
    // The entry holds the subtree's prefix, so the hooks run even when the
    // task's record is gone. Entries of older versions hold the bare id.
    let prefix: string | undefined = decoder.decode(cascade);
    if (!prefix.endsWith('/')) {
      const record = await this.#find(id);
      prefix = record && treeKey(record.chain);
    }
    if (!prefix) return 0;
    for (const hook of this.#onEnded) await hook({ rootId: id, prefix });
    return 1;
  }

  /** Records that a task's subtree ended and its hooks must run (see {@link runCascades}). */
  async #recordCascade(entries: EntryStore, record: TaskRecord): Promise<void> {
    await entries.put(CASCADES, record.id, encoder.encode(treeKey(record.chain)));
  }

  /** Records how a task ended; false when it had ended already (the first end stands). */
  async #mark(entries: EntryStore, id: string, state: TaskState, by: string): Promise<boolean> {
    return entries.putIfAbsent(
      STATE,
      id,
      sealJson(this.#cipher, STATE, id, { state, by, at: new Date(this.#now()).toISOString() }),
    );
  }

  async #find(id: string, entries: EntryStore = this.#storage.entries): Promise<TaskRecord | undefined> {
    if (!/^tsk_[A-Za-z0-9_-]{22}$/.test(id)) return undefined;
    const entry = await entries.get(TASKS, id);
    return entry ? this.#opened.openJson<TaskRecord>(this.#cipher, TASKS, id, entry.value) : undefined;
  }

  async #get(id: string): Promise<TaskRecord> {
    const record = await this.#find(id);
    if (!record) throw new NotFoundError();
    return record;
  }

  /**
   * A stored task as shown: its state, and the labels it holds now (its
   * role's current ones over its own, as its requests are decided).
   * `roleOf` lets one listing read each role once.
   */
  async #view(record: TaskRecord, roleOf: RoleLookup = this.#roleLookup()): Promise<TaskView> {
    const view = this.#viewOf(record, await this.isActive(record.chain));
    const role = await roleOf(record.role);
    if (role && isTaskOfRole(record, role)) view.labels = { ...currentTaskLabels(record.labels, record, role) };
    return view;
  }

  /** Reads each role at most once (for one listing). */
  #roleLookup(): RoleLookup {
    const seen = new Map<string, Promise<Role | undefined>>();
    return (name) => {
      let role = seen.get(name);
      if (!role) {
        role = this.#roles.find(name).catch(() => undefined);
        seen.set(name, role);
      }
      return role;
    };
  }

  #viewOf(record: TaskRecord, status: { active: true } | { active: false; state: TaskState; by: string }): TaskView {
    const state: TaskState = status.active ? (record.expires_at <= this.#now() ? 'expired' : 'active') : status.state;
    // Member by member rather than `{ expires_at, ...rest }`: a view is built
    // for every mint, and the rest copy is the slow, generic one.
    const view: TaskView = {
      id: record.id,
      parent_id: record.parent_id,
      chain: record.chain,
      depth: record.depth,
      role: record.role,
      sub: record.sub,
      scope: record.scope,
      labels: record.labels,
      accessor: record.accessor,
      act: record.act,
      jkt: record.jkt,
      created_time: record.created_time,
      via: record.via,
      state,
      expire_time: new Date(record.expires_at).toISOString(),
    };
    if (record.audience !== undefined) view.audience = record.audience;
    if (!status.active) view.ended_by = status.by;
    return view;
  }
}

/**
 * Which of a new root task's labels come from its role alone (see
 * {@link TaskRecord.role_label_keys}); a key granted as well stays if the
 * role drops it. Left out when there are none.
 */
function roleLabelKeys(role: Role, granted: Readonly<Record<string, string>>): { role_label_keys?: string[] } {
  const keys = Object.keys(role.labels ?? {}).filter((key) => !Object.hasOwn(granted, key));
  return keys.length > 0 ? { role_label_keys: keys } : {};
}

// Time-ordered: a batch of new tasks lands on neighbouring B-tree pages (see timeOrderedId).
const newTaskId = () => `tsk_${timeOrderedId()}`;
const treeKey = taskTreePrefix;
const lastSegment = (key: string) => key.slice(0, -1).split('/').pop() as string;
