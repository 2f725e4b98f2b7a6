import type { Finding } from '@custos/core';

/** The slice of a pino logger the sink writes with. */
export interface AlertLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const LEVEL_ERROR = new Set(['high', 'critical']);

/**
 * The log alert sink: one line per finding, at `error` for high and
 * critical, `warn` otherwise. It carries the finding's id, rule, severity,
 * subject (ids and names) and evidence (audit seqs) — never the
 * explanation, which may quote secret paths that are kept behind the
 * barrier; an operator reads it with `custos alerts show ID`.
 */
export function logAlertSink(logger: AlertLogger): (finding: Finding) => void {
  return (finding) => {
    const line = {
      alert: {
        id: finding.id,
        rule: finding.rule,
        severity: finding.severity,
        time: finding.time,
        subject: finding.subject,
        evidence_seqs: finding.evidence.map((e) => e.seq),
      },
    };
    if (LEVEL_ERROR.has(finding.severity)) logger.error(line, 'anomaly alert raised');
    else logger.warn(line, 'anomaly alert raised');
  };
}
