import { DAY, type HistoryContext, HOUR, MINUTE } from './history-context.js';
import { historyEvents } from './history-events.js';
import { ciLogin, coordLogin, etlLogin, gatewayLogin, gpuLogin } from './history-logins.js';

/**
 * The normal life of a deployment, one workload (an agent type, a role) per
 * entry: each writes one day of its work. Rhythms are what real trails show
 * — office hours, nightly batches, a diurnal curve that never reaches zero —
 * and every workload's paths, upstreams, addresses, tree shapes and rates
 * are fixed properties of the workload, used from its first day, so what a
 * rule learns in its warm-up is what the workload is.
 */
export interface HistoryWorkload {
  readonly role: string;
  readonly description: string;
  /** Writes the work of the day starting at `dayStart` (UTC midnight); `weekday` 0 is Monday. */
  day(ctx: HistoryContext, dayStart: number, weekday: number): void;
}

export const GPU_PATHS = ['kv/models/model-store-key', 'kv/models/hf-token'] as const;
export const GATEWAY_PATHS = ['kv/gateway/routing-config', 'kv/gateway/tls-client'] as const;
export const CI_PATHS = ['kv/ci/registry-token', 'kv/ci/signing-key'] as const;
export const ETL_PATHS = ['kv/etl/warehouse-dsn', 'kv/etl/s3-export'] as const;
export const COORD_PATHS = ['kv/agents/search-key', 'kv/agents/vector-db'] as const;

/** 0.35 at 04:00 UTC, 1 at 16:00: busy by day, never idle. */
const diurnal = (at: number) => 0.675 - 0.325 * Math.cos((2 * Math.PI * (((at % DAY) / HOUR - 4) % 24)) / 24);

/** GPU inference nodes: Mon–Fri, 07:00–19:00 UTC; a task every ~30 min per node reads the model store. */
const gpuInference: HistoryWorkload = {
  role: 'gpu-infer',
  description: 'GPU inference nodes, Mon–Fri 07:00–19:00 UTC, reading the model-store key',
  day(ctx, dayStart, weekday) {
    if (weekday >= 5) return;
    for (const node of ctx.world.gpuNodes) {
      for (let t = dayStart + 7 * HOUR + ctx.rng.int(0, 20) * MINUTE; t < dayStart + 18 * HOUR + 30 * MINUTE; ) {
        let { task, at } = gpuLogin(ctx, t, node, node.ip);
        for (const path of GPU_PATHS) at = ctx.read(at + ctx.rng.int(50, 900), task, path);
        // The model server re-reads its key as its cache expires.
        const refreshes = ctx.rng.int(2, 6);
        for (let i = 0; i < refreshes; i++) at = ctx.read(at + ctx.rng.int(2, 5) * MINUTE, task, GPU_PATHS[0]);
        ctx.end(at + ctx.rng.int(1, 30) * 1_000, task);
        t += ctx.rng.int(20, 40) * MINUTE;
      }
    }
  },
};

/** API gateways: 24/7 on a diurnal curve; 15-minute tasks calling the LLM upstream through the proxy. */
const apiGateway: HistoryWorkload = {
  role: 'api-gateway',
  description: 'API gateways, 24/7 on a diurnal curve, calling the LLM upstream through the proxy',
  day(ctx, dayStart) {
    for (const gw of ctx.world.gateways) {
      for (let t = dayStart + ctx.rng.int(0, 60) * 1_000; t < dayStart + DAY; t += 15 * MINUTE) {
        let { task, at } = gatewayLogin(ctx, t, gw, ctx.rng.pick(gw.ips));
        for (const path of GATEWAY_PATHS) at = ctx.read(at + ctx.rng.int(20, 200), task, path);
        // A denied read now and then: an admin override the gateway may not read (a normal, low rate).
        if (ctx.rng.chance(0.02)) at = ctx.read(at + 1_000, task, 'kv/gateway/admin-override', true);
        const end = t + 15 * MINUTE - 5_000;
        const perMinute = 0.4 * diurnal(t) * 2;
        for (let c = at + ctx.rng.exp(MINUTE / perMinute); c < end; c += ctx.rng.exp(MINUTE / perMinute)) {
          ctx.proxy(c, task, 'openai');
        }
        ctx.end(end, task);
      }
    }
  },
};

/** CI: jobs Mon–Fri 08:00–20:00 (Poisson, ~4 an hour per repository), and a nightly build at 02:00 every day. */
const ciRunner: HistoryWorkload = {
  role: 'ci',
  description: 'CI jobs, Mon–Fri 08:00–20:00 UTC and a nightly build at 02:00',
  day(ctx, dayStart, weekday) {
    for (const repo of ctx.world.ciRepos) {
      const job = (t: number) => {
        let { task, at } = ciLogin(ctx, t, repo, ctx.rng.pick(ctx.world.ciIps));
        for (const path of CI_PATHS) at = ctx.read(at + ctx.rng.int(200, 3_000), task, path);
        // Integration tests take a database login of their own.
        if (ctx.rng.chance(0.3)) at = ctx.creds(at + ctx.rng.int(1, 20) * 1_000, task, 'pg-ci/migrator');
        // A job reaching for production now and then (a misconfigured workflow): refused.
        if (ctx.rng.chance(0.05)) at = ctx.read(at + 2_000, task, 'kv/prod/db', true);
        ctx.end(at + ctx.rng.int(1, 12) * MINUTE, task);
      };
      job(dayStart + 2 * HOUR + ctx.rng.int(0, 10) * MINUTE);
      if (weekday >= 5) continue;
      for (
        let t = dayStart + 8 * HOUR + ctx.rng.exp(15 * MINUTE);
        t < dayStart + 20 * HOUR;
        t += ctx.rng.exp(15 * MINUTE)
      ) {
        job(t);
      }
    }
  },
};

/** Nightly ETL: at 01:00 a coordinator fans out to 12–20 workers, each with a database login; some split once more. */
const nightlyEtl: HistoryWorkload = {
  role: 'etl',
  description: 'Nightly ETL at 01:00 UTC: a fan-out of 12–20 workers with dynamic database logins',
  day(ctx, dayStart) {
    for (const identity of ctx.world.etlIdentities) {
      const ip = () => ctx.rng.pick(ctx.world.etlIps);
      let { task: root, at } = etlLogin(ctx, dayStart + HOUR + ctx.rng.int(0, 5) * MINUTE, identity, ip());
      at = ctx.read(at + 500, root, ETL_PATHS[0]);
      const workers = ctx.rng.int(12, 20);
      let last = at;
      for (let w = 0; w < workers; w++) {
        const d = ctx.delegate(at + w * ctx.rng.int(3, 8) * MINUTE, root, 'json');
        const worker = { ...d.task, ip: ip() };
        let wt = ctx.creds(d.at + ctx.rng.int(1, 10) * 1_000, worker, 'pg-main/etl-writer');
        for (const path of ETL_PATHS) wt = ctx.read(wt + ctx.rng.int(100, 2_000), worker, path);
        if (ctx.rng.chance(0.25)) {
          const sub = ctx.delegate(wt + 1_000, worker, 'exchange');
          wt = ctx.read(sub.at + 500, sub.task, ETL_PATHS[1]);
          wt = ctx.end(wt + ctx.rng.int(1, 10) * MINUTE, sub.task);
        }
        wt = ctx.end(wt + ctx.rng.int(5, 25) * MINUTE, worker);
        last = Math.max(last, wt);
      }
      ctx.end(last + MINUTE, root);
    }
  },
};

/** Agent coordinators: 24/7 bootstrap logins (a new identity each), trees of 2–5 children, some grandchildren. */
const coordinator: HistoryWorkload = {
  role: 'coord',
  description: 'Agent coordinators, 24/7 on a diurnal curve: delegation trees of depth 2, width 2–5',
  day(ctx, dayStart) {
    for (
      let t = dayStart + ctx.rng.exp(20 * MINUTE);
      t < dayStart + DAY;
      t += ctx.rng.exp((30 * MINUTE) / diurnal(t))
    ) {
      const ip = ctx.rng.pick(ctx.world.coordIps);
      let { task: root, at } = coordLogin(ctx, t, ip);
      at = ctx.read(at + 200, root, COORD_PATHS[0]);
      const children = ctx.rng.int(2, 5);
      let done = at;
      for (let c = 0; c < children; c++) {
        const d = ctx.delegate(at + ctx.rng.int(1, 20) * 1_000, root);
        at = d.at;
        let ct = ctx.read(at + 300, d.task, ctx.rng.pick(COORD_PATHS));
        const calls = ctx.rng.int(1, 4);
        for (let i = 0; i < calls; i++) ct = ctx.proxy(ct + ctx.rng.int(1, 30) * 1_000, d.task, 'llm');
        if (ctx.rng.chance(0.3)) {
          const grandchildren = ctx.rng.int(1, 2);
          for (let g = 0; g < grandchildren; g++) {
            const gd = ctx.delegate(ct + 500, d.task);
            ct = ctx.proxy(gd.at + ctx.rng.int(1, 10) * 1_000, gd.task, 'llm');
            ct = ctx.end(ct + 2_000, gd.task);
          }
        }
        done = Math.max(done, ctx.end(ct + ctx.rng.int(5, 60) * 1_000, d.task));
      }
      // The root ends last: ending it ends its subtree, whose tokens would then be refused.
      ctx.end(done + ctx.rng.int(1, 5) * MINUTE, root);
    }
  },
};

/** Operators: a weekly rotation on Monday at 10:00, new versions of the keys the workloads read. */
const rotations: HistoryWorkload = {
  role: '(operator)',
  description: 'Weekly rotations by an operator token, Monday 10:00 UTC',
  day(ctx, dayStart, weekday) {
    if (weekday !== 0) return;
    let at = dayStart + 10 * HOUR + ctx.rng.int(0, 30) * MINUTE;
    for (const path of [GPU_PATHS[1], GATEWAY_PATHS[1], CI_PATHS[0], COORD_PATHS[0]]) {
      at = ctx.emit(
        at + ctx.rng.int(5, 60) * 1_000,
        historyEvents.operatorWrite(ctx.requestId(), ctx.world.operator, path),
      );
    }
  },
};

/** The normal workloads of a generated history. */
export const HISTORY_WORKLOADS: readonly HistoryWorkload[] = [
  gpuInference,
  apiGateway,
  ciRunner,
  nightlyEtl,
  coordinator,
  rotations,
];
