import type { AuditLog } from '../audit/audit-log.js';
import type { EgressPolicy } from '../egress/egress-policy.js';
import type { HoneytokenWatch } from '../honeytokens/honeytoken-types.js';
import type { AuditStore } from '../ports/storage.js';
import type { EventBus } from '../rotation/event-bus.js';
import type { RoleService } from '../tasks/role-service.js';
import type { TaskService } from '../tasks/task-service.js';
import type { AnomalyConfig } from './anomaly-config.js';
import { type AnomalyRuleContext, createAnomalyRules } from './anomaly-config.js';
import { AnomalyEngine } from './anomaly-engine.js';
import { resumeAnomalyEngine } from './anomaly-warm.js';
import { DeclaredHours } from './declared-hours.js';
import type { Finding } from './finding.js';
import type { FindingStore } from './finding-store.js';
import { QuarantineRunner, type QuarantineRunnerDeps } from './quarantine-runner.js';
import { type AlertWebhookOptions, AlertWebhookSink } from './webhook-alert-sink.js';

export interface AnomalyServiceDeps {
  readonly audit: Pick<AuditLog, 'observe' | 'record'>;
  readonly auditStore: AuditStore;
  readonly alerts: FindingStore;
  readonly events: Pick<EventBus, 'publish'>;
  readonly egress: EgressPolicy;
  readonly config?: AnomalyConfig;
  /** Rule errors, suppressed findings, storage failures, dropped events — never event or finding contents. */
  readonly report?: (what: string, error: unknown) => void;
  /** The log alert sink. */
  readonly onFinding?: (finding: Finding) => void;
  readonly webhook?: AlertWebhookOptions;
  /** The honeytoken registry's in-memory view, for the `honeytoken` rule (and replays of it). */
  readonly honeytokens?: HoneytokenWatch;
  /**
   * What quarantine actions act through (TaskService's revocation, RoleService's
   * suspension) and what `off-hours` reads (roles' declared active hours).
   * Without it, no action runs and no declaration is read.
   */
  readonly roles?: Pick<RoleService, 'suspend' | 'list' | 'find' | 'onChange'>;
  readonly tasks?: Pick<TaskService, 'record' | 'revoke'>;
  /** Tests: waits between attempts of an action. */
  readonly actionRetryMs?: QuarantineRunnerDeps['retryMs'];
}

/** A running engine and how to stop it. */
export interface AnomalyService {
  readonly engine: AnomalyEngine;
  /** What the rules read besides events (roles' declared hours): replays judge history with the same. */
  readonly ruleContext: AnomalyRuleContext;
  /**
   * Stops after the audit log has closed: the last records go through the
   * rules, their findings are stored, and the progress is saved unless
   * `sealed` (the barrier is closed then: the records after the last saved
   * progress are examined again at the next unseal).
   */
  stop(sealed: boolean): Promise<void>;
}

/**
 * Starts the anomaly engine of a node: its sinks (the log, the event bus,
 * the webhook) attached first, then the stored history resumed (baselines
 * learned, records past the saved progress examined), then the audit log
 * observed. The progress is saved with each finding and at shutdown, off every request's path.
 * Undefined when `config.enabled` is false.
 */
export async function startAnomalyService(deps: AnomalyServiceDeps): Promise<AnomalyService | undefined> {
  const config = deps.config ?? {};
  if (config.enabled === false) return undefined;
  const report = deps.report ?? (() => undefined);
  const declared = deps.roles ? new DeclaredHours(deps.roles) : undefined;
  const ruleContext: AnomalyRuleContext = {
    ...(declared ? { declaredHours: declared.lookup } : {}),
    ...(deps.honeytokens ? { honeytokens: deps.honeytokens } : {}),
  };
  let unfollow: (() => void) | undefined;
  if (declared && deps.roles) {
    try {
      unfollow = await declared.start(deps.roles);
    } catch (error) {
      // Unreadable roles leave declarations to be read as roles are seen (DeclaredHours.lookup).
      report('roles', error);
    }
  }
  const runner =
    deps.roles && deps.tasks
      ? new QuarantineRunner({
          tasks: deps.tasks,
          roles: deps.roles,
          store: deps.alerts,
          audit: deps.audit,
          events: deps.events,
          ...(config.actions ? { config: config.actions } : {}),
          ...(deps.actionRetryMs ? { retryMs: deps.actionRetryMs } : {}),
          report,
        })
      : undefined;
  const engine = new AnomalyEngine({
    rules: createAnomalyRules(config, ruleContext),
    store: deps.alerts,
    ...(runner ? { afterStore: runner.run } : {}),
    ...(config.maxQueue ? { maxQueue: config.maxQueue } : {}),
    ...(config.maxFindingsPerMinute ? { maxFindingsPerMinute: config.maxFindingsPerMinute } : {}),
    onSuppressing: (rule, suppressed) =>
      report(`rule:${rule}`, new Error(`over its budget of findings per minute: ${suppressed} suppressed so far`)),
    onRuleError: (rule, error) => report(`rule:${rule}`, error),
    onStoreError: (error) => report('store', error),
    onDropping: (dropped) =>
      report('queue', new Error(`the rules fell behind: ${dropped} audit events dropped unexamined so far`)),
  });
  // Sinks before anything is examined: a finding raised while resuming is announced like any other.
  if (deps.onFinding) engine.subscribe(deps.onFinding);
  const webhook = deps.webhook ? new AlertWebhookSink(deps.egress, deps.webhook) : undefined;
  if (webhook) engine.subscribe(webhook.offer);
  engine.subscribe((finding) =>
    deps.events.publish({
      type: 'alert.raised',
      path: `sys/alerts/${finding.id}`,
      id: finding.id,
      rule: finding.rule,
      severity: finding.severity,
      time: finding.time,
    }),
  );
  // A progress that does not open (altered in storage) counts as none: the
  // history is still learned from, nothing is resumed, and it is reported.
  let saved = 0;
  try {
    saved = await deps.alerts.readCursor();
  } catch (error) {
    report('cursor', error);
  }
  // A history that cannot be read only leaves the baselines cold.
  try {
    await resumeAnomalyEngine(engine, deps.auditStore, { warmEvents: config.warmEvents ?? 10_000, cursor: saved });
  } catch (error) {
    report('warm', error);
  }
  let saving = false;
  const save = async () => {
    const seq = engine.progress();
    if (seq <= saved || saving) return;
    saving = true;
    try {
      await deps.alerts.writeCursor(seq);
      saved = seq;
    } catch (error) {
      report('cursor', error);
    } finally {
      saving = false;
    }
  };
  // Saved at shutdown and along with each finding — never on a timer: a
  // timer would make every stream of requests, anonymous refusals included,
  // cause a write. After a crash the records since the last save (at most
  // `maxResume`) are examined again; a finding raised twice is stored once.
  engine.subscribe(() => void save());
  const unobserve = deps.audit.observe(engine.offer);
  return {
    engine,
    ruleContext,
    stop: async (sealed) => {
      unobserve();
      unfollow?.();
      await engine.close();
      if (!sealed) await save();
      // Deliveries still queued are not sent: the findings are stored, and listed by `custos alerts list`.
      await webhook?.close();
    },
  };
}
