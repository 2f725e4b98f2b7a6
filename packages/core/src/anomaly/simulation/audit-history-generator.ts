import type { AuditEvent, AuditEventInput } from '../../audit/audit-event.js';
import { AUDIT_EMPTY_HEAD, type AuditChainHead, chainAuditRecords } from '../../audit/audit-hash.js';
import { canonicalJson } from '../../audit/canonical-json.js';
import type { AuditRecord } from '../../ports/storage.js';
import { DAY, HistoryContext, type HistoryWorld } from './history-context.js';
import { HISTORY_INCIDENTS, type HistoryIncidentKind } from './history-incidents.js';
import { HISTORY_WORKLOADS, type HistoryWorkload } from './history-workloads.js';
import { SeededRandom } from './seeded-random.js';

export interface AuditHistoryOptions {
  /** Same seed, same history, on every machine (default 1). */
  readonly seed?: number;
  /** Length in weeks (default 5; incidents need at least 3: off-hours wants 14 days of history first). */
  readonly weeks?: number;
  /** Identities per workload, multiplied (default 1: about 8,000 records a day). */
  readonly scale?: number;
  /** The first day, a Monday at 00:00 UTC (default 2026-01-05). */
  readonly start?: string;
  /** The incidents to inject (default {@link HISTORY_INCIDENTS}; [] for a clean history). */
  readonly incidents?: readonly HistoryIncidentKind[];
  /** The normal workloads (default {@link HISTORY_WORKLOADS}). */
  readonly workloads?: readonly HistoryWorkload[];
}

/** One generated record: its time, the event as the server would record it, and its incident (-1: normal). */
export interface GeneratedAuditEvent {
  readonly at: number;
  readonly event: AuditEventInput;
  readonly incident: number;
}

export interface AuditHistory {
  readonly start: number;
  readonly weeks: number;
  /** The injected incidents; a record's `incident` is an index here. */
  readonly incidents: readonly HistoryIncidentKind[];
  /** The records in time order, generated a day at a time (memory: about a day's records). Repeatable. */
  events(): Generator<GeneratedAuditEvent>;
}

/**
 * A realistic audit history, seeded: the normal work of several workloads
 * with their own rhythms (GPU inference nodes in office hours, API gateways
 * around the clock, CI by day with a nightly build, a nightly ETL fan-out
 * with dynamic database logins, agent coordinators building delegation
 * trees, weekly rotations by an operator), denied requests at a low normal
 * rate, a few networks per identity — and injected incidents, each labelled
 * with the rule that must catch it (see {@link HISTORY_INCIDENTS}).
 *
 * Each workload and each incident draws from its own seeded stream (per
 * day), so adding an incident kind changes nothing else in the history.
 * The records have the server's exact shapes (see `history-events.ts`).
 */
export function generateAuditHistory(options: AuditHistoryOptions = {}): AuditHistory {
  const seed = options.seed ?? 1;
  const weeks = options.weeks ?? 5;
  const scale = options.scale ?? 1;
  const start = Date.parse(options.start ?? '2026-01-05T00:00:00.000Z');
  if (!Number.isInteger(weeks) || weeks < 1) throw new RangeError('weeks must be a whole number from 1');
  if (!Number.isInteger(scale) || scale < 1) throw new RangeError('scale must be a whole number from 1');
  // 1970-01-01 was a Thursday: Monday midnights are 4 days past a multiple of 7 days.
  if ((start - 4 * DAY) % (7 * DAY) !== 0) throw new RangeError('start must be a Monday at 00:00 UTC');
  const incidents = options.incidents ?? HISTORY_INCIDENTS;
  const workloads = options.workloads ?? HISTORY_WORKLOADS;
  const world = historyWorld(new SeededRandom(mix(seed, 0x5eed)), scale);
  const days = weeks * 7;
  for (const incident of incidents) {
    const day = incident.day(weeks);
    if (!(day >= 0 && day < days)) throw new RangeError(`incident ${incident.id} falls outside the history`);
  }

  function* events(): Generator<GeneratedAuditEvent> {
    let carried: GeneratedAuditEvent[] = [];
    for (let day = 0; day < days; day++) {
      const dayStart = start + day * DAY;
      const buffer = carried;
      const sinkFor = (incident: number) => (at: number, event: AuditEventInput) => {
        buffer.push({ at: Math.round(at), event, incident });
      };
      for (let w = 0; w < workloads.length; w++) {
        const ctx = new HistoryContext(new SeededRandom(mix(seed, 1 + w, day)), world, sinkFor(-1));
        workloads[w]!.day(ctx, dayStart, day % 7);
      }
      for (let i = 0; i < incidents.length; i++) {
        if (incidents[i]!.day(weeks) !== day) continue;
        const ctx = new HistoryContext(new SeededRandom(mix(seed, 1_000 + i, day)), world, sinkFor(i));
        incidents[i]!.inject(ctx, dayStart);
      }
      // Stable: records of one operation keep their order when times tie.
      buffer.sort((a, b) => a.at - b.at);
      const next = dayStart + DAY;
      carried = [];
      for (const e of buffer) {
        if (e.at < next || day === days - 1) yield e;
        else carried.push(e);
      }
    }
  }

  return { start, weeks, incidents, events };
}

/** A batch of chained records, with the parsed events and each record's incident (-1: normal). */
export interface AuditHistoryBatch {
  readonly records: AuditRecord[];
  readonly events: AuditEvent[];
  readonly incidents: number[];
}

/**
 * The history as the audit log would have stored it: each event stamped
 * with its time, in canonical JSON, hash-chained from `head` (default: an
 * empty log), in batches — ready for `AuditStore.append`, or as
 * observations for the rules.
 */
export function* auditHistoryBatches(
  history: AuditHistory,
  batchSize = 1_000,
  head: AuditChainHead = AUDIT_EMPTY_HEAD,
): Generator<AuditHistoryBatch> {
  let chainHead = head;
  let items: { ts: string; event: string }[] = [];
  let events: AuditEvent[] = [];
  let incidents: number[] = [];
  const flush = (): AuditHistoryBatch => {
    const records = chainAuditRecords(chainHead, items);
    chainHead = records[records.length - 1]!;
    const batch = { records, events, incidents };
    items = [];
    events = [];
    incidents = [];
    return batch;
  };
  for (const generated of history.events()) {
    const ts = new Date(generated.at).toISOString();
    const event = { ...generated.event, time: ts } as AuditEvent;
    items.push({ ts, event: canonicalJson(event) });
    events.push(event);
    incidents.push(generated.incident);
    if (items.length >= batchSize) yield flush();
  }
  if (items.length > 0) yield flush();
}

function historyWorld(rng: SeededRandom, scale: number): HistoryWorld {
  const n = (count: number) => Array.from({ length: count * scale }, (_, i) => i);
  return {
    gpuNodes: n(4).map((i) => ({
      identity: `spiffe://custos.local/gpu-infer/node-${i}`,
      ip: `10.20.${1 + (i % 2)}.${10 + (i % 200)}`,
    })),
    gateways: n(3).map((i) => ({
      identity: `spiffe://custos.local/api-gateway/gw-${i}`,
      ips: [`10.40.0.${20 + (i % 200)}`, `10.40.1.${20 + (i % 200)}`],
    })),
    ciRepos: n(3).map((i) => `acme/service-${i}`),
    ciIps: [8, 9].flatMap((net) => Array.from({ length: 4 }, () => `172.16.${net}.${rng.int(10, 250)}`)),
    etlIdentities: n(1).map((i) => `jwt:https://k8s.acme.internal#system:serviceaccount:etl:nightly-${i}`),
    etlIps: Array.from({ length: 6 }, () => `10.30.0.${rng.int(2, 250)}`),
    coordIps: Array.from({ length: 8 }, () => `10.50.0.${rng.int(2, 250)}`),
    operator: {
      accessor: `acc_${rng.base64url(16)}`,
      name: 'ops-rotation',
      policies: ['secrets-admin'],
      ip: '192.0.2.10',
    },
  };
}

/** A 32-bit seed from the history's seed and a stream's coordinates (FNV-1a over their words). */
function mix(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (part >>> 16), 0x01000193) >>> 0;
  }
  return h;
}
