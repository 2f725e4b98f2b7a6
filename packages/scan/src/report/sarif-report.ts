import { builtinDetectors } from '@custos/redact';
import { formatLocation, type ScanFinding, type ScanResult } from '../scan-types.js';
import { maskValue } from './mask-value.js';
import type { ReportOptions } from './report-options.js';

/** Rule text for ids the scanner itself produces; detector ids come from the redaction package. */
export interface SarifRuleInfo {
  readonly id: string;
  readonly description: string;
}

/**
 * SARIF 2.1.0 for code-scanning uploads. A finding inside an archive or model
 * points at the file on disk (`physicalLocation`) and names the path inside it
 * as a `logicalLocation` (`archive/data.pkl › config.openai_api_key`). Errors
 * are reported as `toolExecutionNotifications`, not as results, so they never
 * look like secrets found.
 */
export function sarifReport(
  result: ScanResult,
  options: ReportOptions & { rules?: readonly SarifRuleInfo[]; version?: string } = {},
): string {
  const descriptions = new Map(
    [...builtinDetectors, ...(options.rules ?? [])].map((r) => [r.id, r.description] as const),
  );
  const ruleIds = [...new Set(result.findings.map((f) => f.ruleId))].sort();
  const rules = ruleIds.map((id) => ({
    id,
    shortDescription: { text: descriptions.get(id) ?? describe(id) },
  }));
  const results = result.findings.map((f) => ({
    ruleId: f.ruleId,
    ruleIndex: ruleIds.indexOf(f.ruleId),
    level: f.kind === 'unsafe-code' ? 'warning' : 'error',
    message: { text: message(f, options.showSecrets === true) },
    locations: [
      {
        physicalLocation: {
          artifactLocation: { uri: encodeURI(f.file) },
          region: f.line === undefined ? { startLine: 1 } : { startLine: f.line, startColumn: f.column ?? 1 },
        },
        ...(f.location.length > 0
          ? { logicalLocations: [{ fullyQualifiedName: f.location.join(' › '), kind: 'member' }] }
          : {}),
      },
    ],
    partialFingerprints: { 'custosLocation/v1': formatLocation(f.file, f.location) },
  }));
  const sarif = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'custos-scan',
            informationUri: 'https://github.com/custos/custos',
            version: options.version ?? '0.1.0',
            rules,
          },
        },
        invocations: [
          {
            executionSuccessful: result.errors.length === 0,
            toolExecutionNotifications: result.errors.map((e) => ({
              level: 'error',
              descriptor: { id: e.code },
              message: { text: `${formatLocation(e.file, e.location)}: ${e.message}` },
            })),
          },
        ],
        results,
      },
    ],
  };
  return `${JSON.stringify(sarif, null, 2)}\n`;
}

function message(f: ScanFinding, show: boolean): string {
  if (f.kind === 'unsafe-code') return f.message ?? `unsafe import ${f.value}`;
  const v = show ? f.value : maskValue(f.value);
  return `${f.kind === 'vault' ? 'A stored secret' : 'A secret'} (${f.ruleId}) was found: ${v}`;
}

function describe(id: string): string {
  if (id.startsWith('vault:')) return 'A value stored in the custos vault appears in the artifact';
  if (id.startsWith('known:')) return 'A known secret value appears in the artifact';
  if (id === 'pickle-unsafe-import') return 'A pickle imports a global that runs code when loaded';
  return `Secret detector ${id}`;
}
