import { formatLocation, type ScanResult } from '../scan-types.js';
import { maskValue } from './mask-value.js';
import type { ReportOptions } from './report-options.js';

/** The result as one JSON document; values masked unless asked otherwise. */
export function jsonReport(result: ScanResult, options: ReportOptions = {}): string {
  const doc = {
    findings: result.findings.map((f) => ({
      kind: f.kind,
      ruleId: f.ruleId,
      file: f.file,
      location: f.location,
      display: formatLocation(f.file, f.location, f.line),
      ...(f.line === undefined ? {} : { line: f.line, column: f.column }),
      value: f.kind === 'unsafe-code' || options.showSecrets ? f.value : maskValue(f.value),
      ...(f.message ? { message: f.message } : {}),
    })),
    errors: result.errors.map((e) => ({ ...e, display: formatLocation(e.file, e.location) })),
    summary: {
      filesScanned: result.filesScanned,
      bytesScanned: result.bytesScanned,
      bytesRead: result.bytesRead,
      baselined: result.baselined,
    },
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
