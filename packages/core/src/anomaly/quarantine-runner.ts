import type { AuditLog } from '../audit/audit-log.js';
import { isCustosError, NotFoundError } from '../errors/index.js';
import type { EventBus } from '../rotation/event-bus.js';
import type { RoleService } from '../tasks/role-service.js';
import type { TaskService } from '../tasks/task-service.js';
import type { Finding, FindingActionResult } from './finding.js';
import type { FindingStore } from './finding-store.js';
import { actionsFor, type QuarantineAction, type QuarantineConfig } from './quarantine-config.js';

export interface QuarantineRunnerDeps {
  readonly tasks: Pick<TaskService, 'record' | 'revoke'>;
  readonly roles: Pick<RoleService, 'suspend'>;
  readonly store: Pick<FindingStore, 'claimActions' | 'readActions' | 'writeActions'>;
  readonly audit: Pick<AuditLog, 'record'>;
  readonly events: Pick<EventBus, 'publish'>;
  readonly config?: QuarantineConfig;
  /** Failures to act or to record (never a finding's contents). */
  readonly report?: (what: string, error: unknown) => void;
  /** Waits between attempts of one action (default 0.5 s, 2 s, 8 s). */
  readonly retryMs?: readonly number[];
  /** A claim older than this whose runner never finished (it crashed) is taken over (default 10 min). */
  readonly takeoverMs?: number;
  readonly now?: () => number;
}

/** Suspensions first (no new way in), then the revocation (nothing already in stays). */
const ORDER: readonly QuarantineAction[] = ['suspend-role', 'suspend-identity', 'revoke-task-tree'];

/** An outcome that retrying cannot change. */
class Skip extends Error {}

/**
 * Runs a rule's quarantine actions on a finding it raised: after the
 * finding is stored, off every request's path (the engine calls it from the
 * finding's write, see AnomalyEngineOptions.afterStore).
 *
 * **Only what a verified credential named.** The finding's subject says
 * what to act on (its task id, identity, role), and rules put a task,
 * identity or role there only from an authenticated request or a task
 * token whose signature verified: a refused anonymous request names a
 * source address, which no action touches. So no one can make custos
 * suspend a role or revoke a tree they could not use.
 *
 * **Once.** The actions of a finding are claimed with one insert
 * (FindingStore.claimActions): a finding raised again (a restart, another
 * node resuming the same records) acts once. A claim whose runner never
 * finished — the node died mid-way — is taken over after `takeoverMs`;
 * the actions are idempotent, so doing one again changes nothing.
 *
 * **Audited and told.** Each action writes its own audit event (`type:
 * quarantine`, naming the finding id, the rule, the target and the
 * outcome; no secret), is published on the event stream (`alert.action`),
 * and its outcome is kept with the finding (`custos alerts show`).
 *
 * **Never fatal.** A failure is retried (storage hiccups), then recorded as
 * `failed` and reported; nothing here throws into the engine.
 */
export class QuarantineRunner {
  readonly #deps: QuarantineRunnerDeps;
  readonly #retryMs: readonly number[];
  readonly #takeoverMs: number;
  readonly #now: () => number;
  readonly #report: (what: string, error: unknown) => void;

  constructor(deps: QuarantineRunnerDeps) {
    this.#deps = deps;
    this.#retryMs = deps.retryMs ?? [500, 2_000, 8_000];
    this.#takeoverMs = deps.takeoverMs ?? 10 * 60_000;
    this.#now = deps.now ?? Date.now;
    this.#report = deps.report ?? (() => undefined);
  }

  /** The engine's hook: runs the finding's actions unless they ran (or are running) already. Never throws. */
  readonly run = async (finding: Finding): Promise<void> => {
    const planned = actionsFor(this.#deps.config, finding.rule, finding.severity);
    if (planned.length === 0) return;
    try {
      if (!(await this.#claim(finding.id))) return;
    } catch (error) {
      this.#report('quarantine', error);
      return;
    }
    const results: FindingActionResult[] = [];
    for (const action of ORDER) {
      if (planned.includes(action)) results.push(await this.#act(action, finding));
    }
    const record = { state: 'finished' as const, at: new Date(this.#now()).toISOString(), actions: results };
    await this.#attempt(() => this.#deps.store.writeActions(finding.id, record)).catch((error: unknown) =>
      this.#report('quarantine', error),
    );
  };

  /** True when this runner is to act: the first claim, or one left running far too long by a runner that died. */
  async #claim(id: string): Promise<boolean> {
    const now = new Date(this.#now());
    if (await this.#deps.store.claimActions(id, now)) return true;
    const existing = await this.#deps.store.readActions(id);
    if (!existing || existing.state === 'finished') return false;
    return now.getTime() - Date.parse(existing.at) > this.#takeoverMs;
  }

  async #act(action: QuarantineAction, finding: Finding): Promise<FindingActionResult> {
    let attempts = 0;
    let result: Omit<FindingActionResult, 'action' | 'at' | 'attempts'>;
    try {
      const target = await this.#attempt(() => {
        attempts++;
        return this.#perform(action, finding);
      });
      result = { outcome: 'done', target };
    } catch (error) {
      if (error instanceof Skip) result = { outcome: 'skipped', detail: error.message };
      else {
        result = { outcome: 'failed', detail: isCustosError(error) ? error.code : 'error' };
        this.#report(`quarantine:${action}`, error);
      }
    }
    const done: FindingActionResult = { action, at: new Date(this.#now()).toISOString(), attempts, ...result };
    await this.#announce(done, finding);
    return done;
  }

  /** Does one action; throws Skip when there is nothing (left) to do. Returns what was acted on. */
  async #perform(action: QuarantineAction, finding: Finding): Promise<FindingActionResult['target']> {
    const { subject } = finding;
    const by = `alert:${finding.id}`;
    if (action === 'revoke-task-tree') {
      if (!subject.task_id) throw new Skip('no task in the finding');
      const record = await this.#deps.tasks.record(subject.task_id).catch((error: unknown) => {
        throw error instanceof NotFoundError ? new Skip('the task is gone') : error;
      });
      // The whole tree from its root, not the offending task's subtree: its
      // siblings and ancestors were handed the same grant (a child's scope is
      // a subset of its parent's), and whatever leaked — a token, a secret
      // read into the agent's context, a dynamic database user — is in reach
      // of every task of the tree. Revocation drops every lease of the tree
      // (dynamic database users included) through TaskService's own cascade.
      const root = record.chain[0] ?? record.id;
      await this.#deps.tasks.revoke(root, by).catch((error: unknown) => {
        throw error instanceof NotFoundError ? new Skip('the task tree is gone') : error;
      });
      return { task_id: root, role: record.role };
    }
    if (!subject.role) throw new Skip('no role in the finding');
    if (action === 'suspend-identity' && !subject.identity) throw new Skip('no identity in the finding');
    const identity = action === 'suspend-identity' ? subject.identity : undefined;
    const suspension = { by, at: new Date(this.#now()).toISOString(), finding_id: finding.id, rule: finding.rule };
    const { changed } = await this.#deps.roles
      .suspend(subject.role, identity !== undefined ? { identity } : {}, suspension)
      .catch((error: unknown) => {
        throw error instanceof NotFoundError ? new Skip('the role is gone') : error;
      });
    if (!changed) throw new Skip('already suspended');
    return { role: subject.role, ...(identity !== undefined ? { identity } : {}) };
  }

  /** Retries `fn` after each wait; a Skip or a refusal that will not change (a validation error) is not retried. */
  async #attempt<T>(fn: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (error) {
        const wait = this.#retryMs[i];
        const final = error instanceof Skip || (isCustosError(error) && error.status < 500);
        if (final || wait === undefined) throw error;
        await new Promise((resolve) => setTimeout(resolve, wait).unref());
      }
    }
  }

  /** The action's own audit event, then the event stream. An audit failure is reported; the action stands. */
  async #announce(result: FindingActionResult, finding: Finding): Promise<void> {
    const kind = result.action.replaceAll('-', '_') as 'revoke_task_tree' | 'suspend_identity' | 'suspend_role';
    try {
      await this.#deps.audit.record({
        type: 'quarantine',
        kind,
        details: {
          finding_id: finding.id,
          rule: finding.rule,
          outcome: result.outcome,
          attempts: result.attempts,
          ...(result.target ?? {}),
          ...(result.detail ? { detail: result.detail } : {}),
        },
      });
    } catch (error) {
      this.#report('quarantine:audit', error);
    }
    this.#deps.events.publish({
      type: 'alert.action',
      path: `sys/alerts/${finding.id}`,
      id: finding.id,
      rule: finding.rule,
      action: result.action,
      outcome: result.outcome,
      time: result.at,
    });
  }
}
