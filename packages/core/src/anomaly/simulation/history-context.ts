import type { AuditEventInput } from '../../audit/audit-event.js';
import { type HistoryOperator, type HistoryTask, historyEvents } from './history-events.js';
import type { SeededRandom } from './seeded-random.js';

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/** The fixed population of a generated history: who works, from where. */
export interface HistoryWorld {
  readonly gpuNodes: readonly { identity: string; ip: string }[];
  readonly gateways: readonly { identity: string; ips: readonly string[] }[];
  readonly ciRepos: readonly string[];
  readonly ciIps: readonly string[];
  readonly etlIdentities: readonly string[];
  readonly etlIps: readonly string[];
  readonly coordIps: readonly string[];
  readonly operator: HistoryOperator;
}

/**
 * What a workload or an incident writes with: the seeded randomness, ids,
 * and `emit`, which places an operation's records on the timeline. Records
 * emitted through an incident's context are labelled with that incident.
 */
export class HistoryContext {
  readonly rng: SeededRandom;
  readonly world: HistoryWorld;
  readonly #sink: (at: number, event: AuditEventInput) => void;

  constructor(rng: SeededRandom, world: HistoryWorld, sink: (at: number, event: AuditEventInput) => void) {
    this.rng = rng;
    this.world = world;
    this.#sink = sink;
  }

  requestId(): string {
    return this.rng.uuid();
  }

  /** A task id shaped like custos's (`tsk_` + 16 bytes, base64url). */
  taskId(): string {
    return `tsk_${this.rng.base64url(16)}`;
  }

  /** Records an operation's records from `at` on, a few milliseconds apart; returns the time after the last. */
  emit(at: number, records: readonly AuditEventInput[]): number {
    let t = at;
    for (const record of records) {
      this.#sink(t, record);
      t += this.rng.int(1, 6);
    }
    return t;
  }

  /** A new root task of `role` logged in at `at` through `route`; returns it and the time after its login. */
  login(
    at: number,
    role: string,
    identity: string,
    ip: string,
    route = '/v1/auth/bootstrap/login',
  ): { task: HistoryTask; at: number } {
    const id = this.taskId();
    const task: HistoryTask = { id, identity, role, chain: [id], policies: [role], ip };
    return { task, at: this.emit(at, historyEvents.login(this.requestId(), route, task)) };
  }

  /** A child of `parent`, minted at `at` through either delegation route; returns it and the time after. */
  delegate(at: number, parent: HistoryTask, via?: 'json' | 'exchange'): { task: HistoryTask; at: number } {
    const id = this.taskId();
    const child: HistoryTask = { ...parent, id, chain: [...parent.chain, id] };
    const route = via ?? (this.rng.chance(0.5) ? 'json' : 'exchange');
    return { task: child, at: this.emit(at, historyEvents.delegate(this.requestId(), parent, id, route)) };
  }

  read(at: number, task: HistoryTask, path: string, denied = false): number {
    return this.emit(at, historyEvents.secretRead(this.requestId(), task, path, denied));
  }

  proxy(at: number, task: HistoryTask, upstream: string, path = '/v1/chat/completions'): number {
    const durationMs = Math.round(this.rng.exp(400)) + 20;
    return this.emit(
      at,
      historyEvents.proxyCall(this.requestId(), task, {
        upstream,
        path,
        status: 200,
        bytesIn: this.rng.int(200, 4_000),
        bytesOut: this.rng.int(300, 20_000),
        durationMs,
      }),
    );
  }

  creds(at: number, task: HistoryTask, engineRole: string): number {
    return this.emit(at, historyEvents.credsIssue(this.requestId(), task, engineRole));
  }

  end(at: number, task: HistoryTask): number {
    return this.emit(at, historyEvents.taskEnd(this.requestId(), task));
  }
}
