import type { AuditEvent } from '../../audit/audit-event.js';
import type { AuditObservation } from '../../audit/audit-log.js';
import type { HoneytokenWatch } from '../../honeytokens/honeytoken-types.js';
import type { AnomalyRule } from '../anomaly-rule.js';
import type { FindingDraft, FindingSeverity, FindingSubject } from '../finding.js';
import { evidenceOf, setBounded, subjectOf } from '../rule-support.js';

export interface HoneytokenRuleConfig {
  /** Default `critical`: no legitimate workload touches a honeytoken. */
  readonly severity: FindingSeverity;
  /**
   * One finding per subject, kind of touch and honeytoken per this long
   * (default 1 min): an agent reading the decoy in a loop makes one alert a
   * minute, so it cannot spend the rule's whole budget of findings and hide
   * another subject's touch behind its own.
   */
  readonly cooldownMs: number;
  /** Subjects remembered for the cooldown. */
  readonly maxTracked: number;
}

export const HONEYTOKEN_RULE_DEFAULTS: HoneytokenRuleConfig = {
  severity: 'critical',
  cooldownMs: 60_000,
  maxTracked: 10_000,
};

/** How a honeytoken was touched, as the audit record shows it. */
type Touch =
  | { kind: 'read'; path: string; allowed: boolean }
  | { kind: 'proxy'; path: string; upstream: string }
  | { kind: 'report'; path: string; source: string }
  | { kind: 'login'; fingerprint: string; route: string }
  | { kind: 'database'; user: string }
  | { kind: 'presented'; fingerprint: string; upstream: string };

/**
 * `honeytoken`: a decoy secret was touched — read (allowed or refused),
 * used through the credential proxy (an upstream whose secret it is), its
 * value carried in a proxied request, reported found by `custos redact` or
 * `custos scan`, or presented to custos as a credential (a token or a
 * bootstrap token). No legitimate workload does any of these, so the first
 * touch is critical, with no baseline or warm-up.
 *
 * The rule reads no storage: it is given the registry's kept-current
 * in-memory view (paths and value fingerprints, both set lookups). Values
 * are matched by audit-key HMAC only — the audit events carry HMACs of
 * refused credentials (`data.credential`), never the values.
 *
 * Not touches: the scanner's fingerprint list (`POST /v1/scan/fingerprints`,
 * records with `phase: path_read`) hands out keyed hashes of every secret the
 * caller may read, honeytokens among them so the list looks the same; a
 * match found with it and reported back is the touch. Writes, deletes and
 * listings of the path are not touches either (see docs/anomaly.md).
 *
 * Replayed over stored history, the rule judges with the honeytokens that
 * exist now: a touch of a honeytoken deleted since is not reported.
 */
export class HoneytokenRule implements AnomalyRule {
  readonly name = 'honeytoken';
  readonly description = 'A honeytoken (decoy secret) was read, used, reported found or presented as a credential';
  readonly config: HoneytokenRuleConfig;
  readonly #watch: HoneytokenWatch | undefined;
  /** Cooldown key → time of its last finding. */
  readonly #last = new Map<string, number>();

  constructor(config: Partial<HoneytokenRuleConfig> = {}, watch?: HoneytokenWatch) {
    this.config = { ...HONEYTOKEN_RULE_DEFAULTS, ...config };
    this.#watch = watch;
  }

  observe(observation: AuditObservation, epochMs: number): FindingDraft | undefined {
    if (!this.#watch) return undefined;
    const event = observation.event;
    const touch = touchOf(event, this.#watch);
    if (!touch) return undefined;
    const subject = subjectOf(event);
    const key = `${subjectKey(subject)}|${touch.kind}|${'path' in touch ? touch.path : 'user' in touch ? touch.user : touch.fingerprint}`;
    const last = this.#last.get(key);
    if (last !== undefined && epochMs - last < this.config.cooldownMs) return undefined;
    this.#last.delete(key);
    setBounded(this.#last, key, epochMs, this.config.maxTracked);
    return {
      severity: this.config.severity,
      subject,
      evidence: [evidenceOf(observation)],
      explanation: explain(touch, subject, event),
    };
  }
}

function touchOf(event: AuditEvent, watch: HoneytokenWatch): Touch | undefined {
  // The decoy database endpoint (`--decoy-db-listen`): only `db-url` honeytokens name its address, so a
  // login attempt there — a user and a password offered — is a touch whatever the credentials.
  if (event.request?.route === 'decoy:postgres') {
    if (event.details?.outcome !== 'password') return undefined;
    const user = event.details.database_user;
    return { kind: 'database', user: typeof user === 'string' ? user : '?' };
  }
  if (event.data) {
    for (const [name, value] of Object.entries(event.data)) {
      if (!watch.hasFingerprint(value)) continue;
      const upstream = event.details?.upstream;
      if (name === 'presented_value') {
        return { kind: 'presented', fingerprint: value, upstream: typeof upstream === 'string' ? upstream : '?' };
      }
      return { kind: 'login', fingerprint: value, route: event.request?.route ?? '?' };
    }
  }
  if (event.type !== 'request') return undefined;
  const details = event.details ?? {};
  if (details.proxy !== undefined) {
    const secret = details.secret_path;
    if (details.phase !== 'request' || typeof secret !== 'string' || !watch.hasPath(secret)) return undefined;
    return { kind: 'proxy', path: secret, upstream: typeof details.upstream === 'string' ? details.upstream : '?' };
  }
  const path = event.request.path;
  if (path === undefined || !watch.hasPath(path)) return undefined;
  if (details.phase === 'path_report') {
    return { kind: 'report', path, source: typeof details.reported_by === 'string' ? details.reported_by : '?' };
  }
  if (event.request.action === 'read' && details.phase !== 'path_read') {
    return { kind: 'read', path, allowed: event.decision === 'allow' && event.status < 400 };
  }
  return undefined;
}

function subjectKey(subject: FindingSubject): string {
  return subject.task_id ?? subject.token_accessor ?? subject.source_ip ?? subject.identity ?? '';
}

function who(subject: FindingSubject, event: AuditEvent): string {
  if (subject.task_id)
    return `Task ${subject.task_id} (identity ${subject.identity ?? '?'}, role ${subject.role ?? '?'})`;
  if (subject.token_accessor) return `The operator token with accessor ${subject.token_accessor}`;
  const ip = event.request?.source_ip;
  return ip ? `A caller at ${ip} with no valid credential` : 'A caller with no valid credential';
}

function explain(touch: Touch, subject: FindingSubject, event: AuditEvent): string {
  const actor = who(subject, event);
  const after =
    ' No legitimate workload touches a honeytoken: whoever did holds credentials or data it should not, or is ' +
    'exploring what it can reach. Treat the subject as compromised (its quarantine action runs), find where it ' +
    'got the decoy from, and replace the honeytoken — it is known now.';
  switch (touch.kind) {
    case 'read':
      return `${actor} ${touch.allowed ? 'read' : 'tried to read (refused)'} the honeytoken ${touch.path}.${after}`;
    case 'proxy':
      return (
        `${actor} called the upstream ${touch.upstream} through the credential proxy, which injects the honeytoken ` +
        `${touch.path}: the call went out with the decoy value and will fail upstream as a bad key would.${after}`
      );
    case 'report':
      return (
        `${actor} reported the value of the honeytoken ${touch.path} found by \`custos ${touch.source}\` in its ` +
        `input: the decoy has left custos and turned up in files, logs or output.${after}`
      );
    case 'login':
      return (
        `${actor} presented a honeytoken's value to custos as a credential (${touch.route}); it was refused like ` +
        `any unknown token. Whoever presented it found the decoy where it was planted or read it.${after}`
      );
    case 'database':
      return (
        `${actor} tried to log in as "${touch.user}" to the decoy database endpoint that db-url honeytokens point ` +
        `at; it was refused as a wrong password. Only a honeytoken's URL names that address.${after}`
      );
    case 'presented':
      return (
        `${actor} sent a honeytoken's value in a request through the credential proxy to the upstream ` +
        `${touch.upstream} (in a header or the query).${after}`
      );
  }
}
