import { parseDuration } from '@custos/core';
import type { Command } from 'commander';
import { CliError, type CliIo, EXIT } from '../cli-io.js';
import { CustosClient } from '../http-client.js';
import { collectList } from '../option-parsers.js';
import { emit, table } from '../output.js';

/** What the server answers for a finding (`GET /v1/alerts/:id`). */
interface AlertView {
  id: string;
  rule: string;
  severity: string;
  time: string;
  state: string;
  subject: Record<string, string>;
  evidence: { seq: number; hash: string; request_id?: string }[];
  explanation: string;
  acked_by?: string;
  acked_at?: string;
  /** The quarantine actions taken on it. */
  actions?: {
    action: string;
    outcome: string;
    at: string;
    attempts: number;
    target?: Record<string, string>;
    detail?: string;
  }[];
}

const usage = (message: string) => new CliError('CUSTOS_ERR_USAGE', message, EXIT.usage);

/** `GET /v1/alerts/rules`. */
interface RulesView {
  enabled: boolean;
  rules: {
    rule: string;
    description: string;
    config: unknown;
    events: number;
    findings: number;
    errors: number;
    suppressed: number;
    actions?: string[];
  }[];
  action_min_severity?: string;
  queued?: number;
  dropped?: number;
  lost?: number;
  /** Milliseconds the rules have held the node's event loop since unseal. */
  busy_ms?: number;
}

/** `POST /v1/alerts/replay`. */
interface ReplayView {
  since: string;
  until: string;
  from_seq: number;
  to_seq: number;
  warmed: number;
  events: number;
  complete: boolean;
  stopped?: string;
  rules: { rule: string; findings: number; suppressed: number; errors: number }[];
  findings: Omit<AlertView, 'state'>[];
  findings_total: number;
}

/** How long the CLI waits for a replay unless told (--timeout, CUSTOS_TIMEOUT): the server's budget and a margin. */
const REPLAY_WAIT_MARGIN_MS = 30_000;
const REPLAY_DEFAULT_BUDGET_MS = 5 * 60_000;

/** The server's largest page. */
const PAGE = 100;

const subjectText = (subject: Record<string, string>) =>
  Object.entries(subject)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ') || '-';

const alertLine = (a: AlertView) =>
  `${a.id}  ${a.time}  ${a.severity.padEnd(8)}  ${a.state.padEnd(5)}  ${a.rule}  ${subjectText(a.subject)}`;

/** The id, checked here so a typo is a usage error and never becomes another URL. */
function alertId(id: string): string {
  if (!/^al_[0-9a-f]{24}_[a-z0-9-]{1,64}$/.test(id)) throw usage(`not an alert id: ${id.slice(0, 100)}`);
  return id;
}

/** `custos alerts list|show|ack|rules|replay`: the anomaly engine's findings and rules. */
export function registerAlertsCommand(program: Command, io: CliIo): void {
  const alerts = program.command('alerts').description('findings of the anomaly engine over the audit trail');

  alerts
    .command('list')
    .description('findings, newest first, one per line')
    .option('--state <state>', 'only open or acked findings')
    .option('--rule <rule>', 'only findings of this rule')
    .option('--severity <severity>', 'only low, medium, high or critical findings')
    .option('--limit <n>', 'at most this many (default 100), fetched a page at a time')
    .option('--cursor <cursor>', 'continue an earlier listing (its next_cursor, from --json)')
    .option('--json', 'JSON output: { alerts, next_cursor? }')
    .action(
      async (opts: {
        state?: string;
        rule?: string;
        severity?: string;
        limit?: string;
        cursor?: string;
        json?: boolean;
      }) => {
        const wanted = opts.limit === undefined ? PAGE : Number(opts.limit);
        if (!Number.isInteger(wanted) || wanted < 1) throw usage('--limit is a whole number from 1');
        const client = new CustosClient(io);
        const found: AlertView[] = [];
        let cursor = opts.cursor;
        do {
          const query = new URLSearchParams({
            ...(opts.state ? { state: opts.state } : {}),
            ...(opts.rule ? { rule: opts.rule } : {}),
            ...(opts.severity ? { severity: opts.severity } : {}),
            limit: String(Math.min(wanted - found.length, PAGE)),
            ...(cursor ? { cursor } : {}),
          }).toString();
          const page = await client.request<{ alerts: AlertView[]; next_cursor?: string }>(
            'GET',
            `/v1/alerts?${query}`,
          );
          found.push(...page.alerts);
          cursor = page.next_cursor;
        } while (cursor && found.length < wanted);
        const result = { alerts: found, ...(cursor ? { next_cursor: cursor } : {}) };
        emit(io, opts.json, result, () => (found.length === 0 ? 'No alerts' : found.map(alertLine).join('\n')));
      },
    );

  alerts
    .command('rules')
    .description("each rule, its configuration and this node's counts since unseal")
    .option('--json', "JSON output (with each rule's configuration)")
    .action(async (opts: { json?: boolean }) => {
      const result = await new CustosClient(io).request<RulesView>('GET', '/v1/alerts/rules');
      emit(io, opts.json, result, () =>
        result.enabled
          ? [
              ...result.rules.map(
                (r) =>
                  `${r.rule.padEnd(22)}  findings ${r.findings}  errors ${r.errors}  events ${r.events}  suppressed ${r.suppressed}  action ${r.actions?.join(',') || 'none'}  ${r.description}`,
              ),
              `queued ${result.queued}  dropped ${result.dropped}  lost ${result.lost}  busy ${result.busy_ms} ms  actions from severity ${result.action_min_severity ?? 'low'}`,
            ].join('\n')
          : 'The anomaly engine is off (anomaly.enabled: false)',
      );
    });

  alerts
    .command('replay')
    .description('run the rules over stored audit history and report what they would have raised, without acting')
    .requiredOption('--since <when>', 'start: a duration back from now (7d, 12h) or an ISO-8601 time')
    .option('--until <when>', 'end (exclusive), the same forms; default now')
    .option('--rule <rule...>', 'only these rules (repeat or comma-separate)', collectList)
    .option('--limit <n>', 'findings listed at most (default 100, at most 1000); all are counted')
    .option('--warm-events <n>', "records before --since the rules learn from first (default the node's warm_events)")
    .option('--budget <duration>', 'wall-clock time the replay may take on the server (default and most: 5m)')
    .option('--json', 'JSON output: { rules, findings, findings_total, complete, … }')
    .action(
      async (opts: {
        since: string;
        until?: string;
        rule?: string[];
        limit?: string;
        warmEvents?: string;
        budget?: string;
        json?: boolean;
      }) => {
        const whole = (flag: string, value: string | undefined) => {
          if (value === undefined) return undefined;
          if (!/^\d{1,7}$/.test(value)) throw usage(`${flag} is a whole number`);
          return Number(value);
        };
        const limit = whole('--limit', opts.limit);
        const warm = whole('--warm-events', opts.warmEvents);
        let budgetMs = REPLAY_DEFAULT_BUDGET_MS;
        if (opts.budget !== undefined) {
          try {
            budgetMs = parseDuration(opts.budget, 24 * 3_600_000);
          } catch {
            throw usage('--budget is a duration such as 2m');
          }
        }
        // A replay may take minutes: wait for the server's budget unless the user set a timeout.
        const waitIo =
          io.requestTimeout === undefined && !io.env.CUSTOS_TIMEOUT
            ? { ...io, requestTimeout: `${Math.ceil((budgetMs + REPLAY_WAIT_MARGIN_MS) / 1_000)}s` }
            : io;
        const result = await new CustosClient(waitIo).request<ReplayView>('POST', '/v1/alerts/replay', {
          since: opts.since,
          ...(opts.until ? { until: opts.until } : {}),
          ...(opts.rule?.length ? { rules: opts.rule } : {}),
          ...(limit !== undefined ? { limit } : {}),
          ...(warm !== undefined ? { warm_events: warm } : {}),
          ...(opts.budget !== undefined ? { time_budget: opts.budget } : {}),
        });
        emit(io, opts.json, result, () => replayText(result));
      },
    );

  alerts
    .command('show <id>')
    .description('one finding: subject, evidence (audit seqs: check them with `custos audit verify`) and explanation')
    .option('--json', 'JSON output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const a = await new CustosClient(io).request<AlertView>('GET', `/v1/alerts/${alertId(id)}`);
      emit(io, opts.json, a, () =>
        [
          table([
            ['id', a.id],
            ['rule', a.rule],
            ['severity', a.severity],
            ['time', a.time],
            ['state', a.acked_by ? `acked by ${a.acked_by} at ${a.acked_at}` : a.state],
            ['subject', subjectText(a.subject)],
            ['evidence', a.evidence.map((e) => `seq ${e.seq}`).join(', ')],
            ...(a.actions ?? []).map(
              (x) =>
                [
                  'action',
                  `${x.action} ${x.outcome}${x.target ? ` ${subjectText(x.target)}` : ''}${x.detail ? ` (${x.detail})` : ''} at ${x.at}`,
                ] as [string, string],
            ),
          ]),
          '',
          a.explanation,
        ].join('\n'),
      );
    });

  alerts
    .command('ack <id>')
    .description('acknowledge a finding (needs admin on sys/alerts/<id>; the first acknowledgement stands)')
    .option('--json', 'JSON output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const a = await new CustosClient(io).request<AlertView>('POST', `/v1/alerts/${alertId(id)}/ack`);
      emit(io, opts.json, a, () => `Acknowledged ${a.id} (by ${a.acked_by})`);
    });
}

/** The replay report for a terminal: what was read, the counts per rule, then the findings. */
function replayText(r: ReplayView): string {
  const range =
    r.events === 0
      ? `No audit records from ${r.since} to ${r.until}`
      : `Replayed ${r.events} audit records (seq ${r.from_seq}–${r.to_seq}) from ${r.since} to ${r.until}, ` +
        `after learning from ${r.warmed} earlier records`;
  const lines = [range];
  if (!r.complete) lines.push(`Stopped early (${r.stopped}): later records were not examined`);
  lines.push(
    '',
    ...r.rules.map(
      (x) => `${x.rule.padEnd(22)}  would raise ${x.findings}  suppressed ${x.suppressed}  errors ${x.errors}`,
    ),
  );
  if (r.findings.length > 0) {
    lines.push(
      '',
      ...r.findings.map((f) => `${f.time}  ${f.severity.padEnd(8)}  ${f.rule}  ${subjectText(f.subject)}`),
    );
  }
  if (r.findings_total > r.findings.length) {
    lines.push(`… and ${r.findings_total - r.findings.length} more (--limit, or --json for all fields)`);
  }
  lines.push('', 'Nothing was stored or acted on.');
  return lines.join('\n');
}
