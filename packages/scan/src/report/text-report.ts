import { formatLocation, type ScanResult } from '../scan-types.js';
import { maskValue } from './mask-value.js';
import type { ReportOptions } from './report-options.js';

/** One line per finding (`location  rule  masked-value`), one per error, then a summary line. */
export function textReport(result: ScanResult, options: ReportOptions = {}): string {
  const lines: string[] = [];
  for (const f of result.findings) {
    const where = formatLocation(f.file, f.location, f.line);
    const shown = f.kind === 'unsafe-code' ? f.value : options.showSecrets ? f.value : maskValue(f.value);
    lines.push(`${where}  ${f.ruleId}  ${shown}${f.message ? `  (${f.message})` : ''}`);
  }
  for (const e of result.errors) {
    lines.push(`${formatLocation(e.file, e.location)}  ${e.code}  ${e.message}`);
  }
  const mb = (result.bytesScanned / 2 ** 20).toFixed(1);
  lines.push(
    `${result.findings.length} finding(s), ${result.errors.length} error(s) in ${result.filesScanned} file(s), ${mb} MiB` +
      (result.baselined ? `; ${result.baselined} accepted by the baseline` : ''),
  );
  return `${lines.join('\n')}\n`;
}
