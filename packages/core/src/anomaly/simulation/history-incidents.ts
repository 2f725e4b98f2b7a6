import { type HistoryContext, HOUR, MINUTE } from './history-context.js';
import { historyEvents } from './history-events.js';
import { ciLogin, coordLogin, etlLogin, gatewayLogin, gpuLogin } from './history-logins.js';
import { COORD_PATHS, GPU_PATHS } from './history-workloads.js';

/**
 * One kind of incident injected into a generated history, labelled with the
 * rule that must catch it. Every record it emits (through its own context)
 * is labelled with it: the quality test counts the incident detected when
 * that rule raises a finding on one of those records.
 *
 * To add a kind (a new rule's incident), add an entry to
 * {@link HISTORY_INCIDENTS} — or pass it in `incidents` to
 * `generateAuditHistory` — with the day it happens on and what it does.
 */
export interface HistoryIncidentKind {
  /** Stable name, e.g. `off-hours-sunday-model-store`. */
  readonly id: string;
  /** The rule that must raise a finding on it. */
  readonly rule: string;
  /** One line: what happens, for the quality table. */
  readonly description: string;
  /**
   * The day (0 = the history's first Monday) it happens on, given the
   * history's length in weeks. Incidents go in the last two weeks, once
   * every rule has its minimum history.
   */
  day(weeks: number): number;
  /** Writes the incident's records on that day (dayStart: its UTC midnight). */
  inject(ctx: HistoryContext, dayStart: number): void;
}

/**
 * The decoy secrets of the generated deployment (honeytokens): no workload
 * of the history reads them; the `honeytoken` incident does. A replay of the
 * history watches them (detection-quality.sqlite.test.ts).
 */
export const HISTORY_HONEYTOKEN_PATHS: readonly string[] = ['kv/finance/legacy-admin'];

/** Days of the last two weeks: `last(6)` is the last Sunday, `prev(1)` the Tuesday before last. */
const last = (weekday: number) => (weeks: number) => (weeks - 1) * 7 + weekday;
const prev = (weekday: number) => (weeks: number) => (weeks - 2) * 7 + weekday;

export const HISTORY_INCIDENTS: readonly HistoryIncidentKind[] = [
  {
    id: 'off-hours-sunday-model-store',
    rule: 'off-hours',
    description: 'A GPU inference node reads the model-store key at 03:00 on a Sunday',
    day: last(6),
    inject(ctx, dayStart) {
      const node = ctx.world.gpuNodes[0]!;
      let { task, at } = gpuLogin(ctx, dayStart + 3 * HOUR + ctx.rng.int(0, 20) * MINUTE, node, node.ip);
      for (let i = 0; i < 3; i++) at = ctx.read(at + MINUTE, task, GPU_PATHS[0]);
      ctx.end(at + MINUTE, task);
    },
  },
  {
    id: 'first-access-secret',
    rule: 'first-access',
    description: 'An API gateway reads a finance secret it never read',
    day: last(2),
    inject(ctx, dayStart) {
      const gw = ctx.world.gateways[1 % ctx.world.gateways.length]!;
      const { task, at } = gatewayLogin(ctx, dayStart + 14 * HOUR + 7 * MINUTE, gw, gw.ips[0]!);
      ctx.end(ctx.read(at + 2_000, task, 'kv/finance/ledger-admin') + 30_000, task);
    },
  },
  {
    id: 'first-access-upstream',
    rule: 'first-access',
    description: 'A CI job calls a payments API through the proxy, which CI never called',
    day: last(1),
    inject(ctx, dayStart) {
      const repo = ctx.world.ciRepos[0]!;
      let { task, at } = ciLogin(ctx, dayStart + 10 * HOUR + 30 * MINUTE, repo, ctx.world.ciIps[0]!);
      for (let i = 0; i < 2; i++) at = ctx.proxy(at + 5_000, task, 'payments', '/v1/charges');
      ctx.end(at + MINUTE, task);
    },
  },
  {
    id: 'request-burst',
    rule: 'request-burst',
    description: 'An API gateway task makes 900 calls in 90 seconds (an agent in a loop)',
    day: last(3),
    inject(ctx, dayStart) {
      const gw = ctx.world.gateways[2 % ctx.world.gateways.length]!;
      let { task, at } = gatewayLogin(ctx, dayStart + 15 * HOUR + 2 * MINUTE, gw, gw.ips[0]!);
      for (let i = 0; i < 900; i++) at = ctx.proxy(at + 100, task, 'openai');
      ctx.end(at + 1_000, task);
    },
  },
  {
    id: 'denied-spike',
    rule: 'denied-spike',
    description: 'A CI job probes 60 production paths it may not read, in under a minute',
    day: last(1),
    inject(ctx, dayStart) {
      const repo = ctx.world.ciRepos[1 % ctx.world.ciRepos.length]!;
      let { task, at } = ciLogin(ctx, dayStart + 11 * HOUR, repo, ctx.world.ciIps[1]!);
      for (let i = 0; i < 60; i++) at = ctx.read(at + 800, task, `kv/prod/service-${i}`, true);
      ctx.end(at + 1_000, task);
    },
  },
  {
    id: 'dead-task-token',
    rule: 'dead-task-token',
    description: "A coordinator's child task token is used two hours after the task ended",
    day: prev(1),
    inject(ctx, dayStart) {
      const ip = ctx.world.coordIps[0]!;
      let { task: root, at } = coordLogin(ctx, dayStart + 16 * HOUR, ip);
      const child = ctx.delegate(at + 1_000, root, 'json');
      at = ctx.read(child.at + 500, child.task, COORD_PATHS[0]);
      at = ctx.end(at + 10_000, child.task);
      ctx.end(at + MINUTE, root);
      ctx.emit(at + 2 * HOUR, historyEvents.deadToken(ctx.requestId(), child.task, '203.0.113.41', 'task_ended'));
    },
  },
  {
    id: 'bootstrap-token-reuse',
    rule: 'bootstrap-token-reuse',
    description: 'A spent bootstrap token is presented again, from another address',
    day: prev(2),
    inject(ctx, dayStart) {
      const accessor = `bac_${ctx.rng.base64url(16)}`;
      const { task, at } = coordLogin(ctx, dayStart + 9 * HOUR, ctx.world.coordIps[1]!, accessor);
      ctx.end(at + 2 * MINUTE, task);
      ctx.emit(
        at + 10 * MINUTE,
        historyEvents.bootstrapReuse(ctx.requestId(), '203.0.113.77', accessor, `hmac-sha256:${ctx.rng.hex(32)}`),
      );
    },
  },
  {
    id: 'new-source-address',
    rule: 'new-source-address',
    description: 'A GPU inference node task makes its usual reads from a network it never used',
    day: last(2),
    inject(ctx, dayStart) {
      const node = ctx.world.gpuNodes[2 % ctx.world.gpuNodes.length]!;
      let { task, at } = gpuLogin(ctx, dayStart + 10 * HOUR, node, '198.51.100.23');
      for (const path of GPU_PATHS) at = ctx.read(at + 1_000, task, path);
      ctx.end(at + MINUTE, task);
    },
  },
  {
    id: 'delegation-deeper',
    rule: 'delegation-shape',
    description: 'A coordinator delegates in a chain four levels deep (its trees go two)',
    day: prev(4),
    inject(ctx, dayStart) {
      let { task, at } = coordLogin(ctx, dayStart + 13 * HOUR, ctx.world.coordIps[2]!);
      const chain = [task];
      for (let depth = 1; depth <= 4; depth++) {
        const d = ctx.delegate(at + 2_000, chain[chain.length - 1]!);
        chain.push(d.task);
        at = ctx.proxy(d.at + 1_000, d.task, 'llm');
      }
      for (const t of chain.reverse()) at = ctx.end(at + 1_000, t);
    },
  },
  {
    id: 'delegation-wider',
    rule: 'delegation-shape',
    description: 'A coordinator task mints 30 children in three minutes (its trees have at most 5)',
    day: last(4),
    inject(ctx, dayStart) {
      let { task, at } = coordLogin(ctx, dayStart + 12 * HOUR, ctx.world.coordIps[3]!);
      const children = [];
      for (let c = 0; c < 30; c++) {
        const d = ctx.delegate(at + 6_000, task, 'json');
        children.push(d.task);
        at = d.at;
      }
      for (const child of children) at = ctx.end(at + 500, child);
      ctx.end(at + 1_000, task);
    },
  },
  {
    id: 'honeytoken-read',
    rule: 'honeytoken',
    description: 'An API gateway task reads a honeytoken (a decoy admin credential) once, in working hours',
    day: prev(3),
    inject(ctx, dayStart) {
      const gw = ctx.world.gateways[0]!;
      const { task, at } = gatewayLogin(ctx, dayStart + 11 * HOUR + 12 * MINUTE, gw, gw.ips[0]!);
      ctx.end(ctx.read(at + 3_000, task, HISTORY_HONEYTOKEN_PATHS[0]!) + 20_000, task);
    },
  },
  {
    id: 'credential-rate',
    rule: 'credential-rate',
    description: 'During the nightly run an ETL worker collects 150 database logins in 30 minutes',
    day: last(5),
    inject(ctx, dayStart) {
      const identity = ctx.world.etlIdentities[0]!;
      let { task, at } = etlLogin(ctx, dayStart + HOUR + 40 * MINUTE, identity, ctx.world.etlIps[0]!);
      for (let i = 0; i < 150; i++) at = ctx.creds(at + 12_000, task, 'pg-main/etl-writer');
      ctx.end(at + 1_000, task);
    },
  },
];
