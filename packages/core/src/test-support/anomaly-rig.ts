import { randomBytes } from 'node:crypto';
import { createStorage } from '@custos/storage';
import { AnomalyEngine, type AnomalyEngineOptions } from '../anomaly/anomaly-engine.js';
import type { AnomalyRule } from '../anomaly/anomaly-rule.js';
import { FindingStore } from '../anomaly/finding-store.js';
import type { AuditEventInput } from '../audit/audit-event.js';
import { AuditLog } from '../audit/audit-log.js';
import { Barrier } from '../barrier/barrier.js';
import type { KeyringBinding } from '../barrier/keyring-store.js';
import type { Storage } from '../ports/storage.js';
import { testSigner } from './audit-fixtures.js';

/**
 * A real audit log on SQLite with the engine observing it, a real barrier
 * for the findings, and a clock the test moves (the log stamps events with
 * it, as the server's log does with the wall clock).
 */
export async function anomalyRig(
  rules: readonly AnomalyRule[],
  options: {
    url?: string;
    engine?: Partial<AnomalyEngineOptions>;
    /** Reopening: the first rig's keys. */
    keys?: { rootKey: Buffer; binding: KeyringBinding; signer: ReturnType<typeof testSigner> };
  } = {},
) {
  const storage: Storage = createStorage(options.url ?? 'sqlite::memory:');
  await storage.migrate();
  const barrier = new Barrier(storage.entries);
  const binding = options.keys?.binding ?? { keyringId: randomBytes(16).toString('hex'), context: 'anomaly-test' };
  const rootKey = options.keys?.rootKey ?? randomBytes(32);
  if (!options.keys) await barrier.createKeyring(rootKey, binding);
  await barrier.unseal(Buffer.from(rootKey), binding);
  const clock = { ms: Date.parse('2026-03-02T09:00:00.000Z') };
  const signing = options.keys?.signer ?? testSigner();
  const { signer, publicKeys } = signing;
  const log = await AuditLog.open({ store: storage.audit, signer, now: () => new Date(clock.ms) });
  const store = new FindingStore({ entries: storage.entries, cipher: barrier });
  const engine = new AnomalyEngine({ rules, store, ...options.engine });
  log.observe(engine.offer);
  return {
    storage,
    barrier,
    publicKeys,
    keys: { rootKey, binding, signer: signing },
    clock,
    log,
    store,
    engine,
    /** Records an event at the clock's time, then moves the clock on by `stepMs`. */
    async record(event: AuditEventInput, stepMs = 1_000) {
      const record = await log.record(event);
      clock.ms += stepMs;
      return record;
    },
    async close() {
      await log.close();
      await engine.close();
      await storage.close();
    },
  };
}

let n = 0;

/** A task's request, as the audit plugin records its outcome. */
export function taskRequest(
  task: { id: string; identity: string; role: string },
  request: {
    path: string;
    action?: string;
    decision?: 'allow' | 'deny';
    status?: number;
    method?: string;
    route?: string;
    sourceIp?: string;
  },
): AuditEventInput {
  const decision = request.decision ?? 'allow';
  return {
    type: 'request',
    request_id: `req-${++n}`,
    auth: {
      task_id: task.id,
      identity: task.identity,
      role: task.role,
      display_name: `task:${task.id}`,
      policies: [task.role],
      task_chain: [task.id],
    },
    request: {
      method: request.method ?? 'GET',
      route: request.route ?? '/v1/secrets/*',
      path: request.path,
      action: request.action ?? 'read',
      source_ip: request.sourceIp ?? '127.0.0.1',
    },
    decision,
    status: request.status ?? (decision === 'allow' ? 200 : 403),
    ...(decision === 'deny' ? { error_code: 'CUSTOS_ERR_PERMISSION_DENIED' } : {}),
    details: { phase: 'response' },
  };
}

/** A request refused at authentication because the (genuine) task token's task is over. */
export function deadTokenRequest(
  task: { id: string; identity: string; role: string },
  reason: 'task_revoked' | 'task_ended' | 'task_expired' | 'expired',
): AuditEventInput {
  return {
    type: 'request',
    request_id: `req-${++n}`,
    auth: {},
    request: { method: 'GET', route: '/v1/secrets/*', source_ip: '198.51.100.7' },
    decision: 'deny',
    status: 401,
    error_code: 'CUSTOS_ERR_UNAUTHENTICATED',
    reason,
    details: { phase: 'response', refused_task: { task_id: task.id, identity: task.identity, role: task.role } },
  };
}
