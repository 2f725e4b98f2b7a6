import { builtinDetectors } from '@custos/redact';
import { formatLocation, type ScanFinding, type ScanResult } from '../scan-types.js';
import { maskValue } from './mask-value.js';
import type { ReportOptions } from './report-options.js';
import { artifactLocation, directoryUri, SRCROOT } from './sarif-location.js';

/** Rule text for ids the scanner itself produces; detector ids come from the redaction package. */
export interface SarifRuleInfo {
  readonly id: string;
  readonly description: string;
}

/** Options of {@link sarifReport}. */
export interface SarifReportOptions extends ReportOptions {
  /** Rule text for rule ids the redaction package does not describe. */
  readonly rules?: readonly SarifRuleInfo[];
  readonly version?: string;
  /** The directory `%SRCROOT%` stands for; default the scan's root (its working directory). */
  readonly srcRoot?: string;
}

/**
 * SARIF 2.1.0 for code-scanning uploads, valid for Microsoft's SARIF
 * Multitool (the test suite runs its `validate` verb on every case).
 *
 * Files under the scan root are relative references against the `%SRCROOT%`
 * base, defined in `run.originalUriBaseIds` as the root's `file:` URI, so a
 * code-scanning service maps them onto the repository; files outside it are
 * absolute `file:` URIs. Both are percent-encoded (see `sarif-location.ts`).
 *
 * A finding inside an archive or model points at the file on disk
 * (`physicalLocation`) and names the path inside it as a `logicalLocation`
 * (`archive/data.pkl › config.openai_api_key`); its line, which counts lines
 * of the member and not of the file on disk, is given in the message and the
 * logical location's properties, not as a region of the file on disk. Errors
 * are reported as `toolExecutionNotifications`, not as results, so they never
 * look like secrets found.
 */
export function sarifReport(result: ScanResult, options: SarifReportOptions = {}): string {
  const descriptions = new Map(
    [...builtinDetectors, ...(options.rules ?? [])].map((r) => [r.id, r.description] as const),
  );
  const ruleIds = [...new Set(result.findings.map((f) => f.ruleId))].sort();
  // fullDescription and help are what GitHub code scanning requires of a
  // rule (Multitool rule GH2012); the friendly name is what viewers show.
  const rules = ruleIds.map((id) => {
    const text = descriptions.get(id) ?? describe(id);
    return {
      id,
      name: friendlyName(id),
      shortDescription: { text },
      fullDescription: { text },
      help: { text: id === 'pickle-unsafe-import' ? UNSAFE_CODE_HELP : SECRET_HELP },
    };
  });
  const results = result.findings.map((f) => {
    const inside = f.location.length > 0;
    // A line of the file itself is a region of it; a line of a member is not.
    const region =
      !inside && f.line !== undefined ? { startLine: f.line, startColumn: f.column ?? 1 } : { startLine: 1 };
    const memberLine = inside && f.line !== undefined ? { line: f.line, column: f.column ?? 1 } : undefined;
    return {
      ruleId: f.ruleId,
      ruleIndex: ruleIds.indexOf(f.ruleId),
      level: f.kind === 'unsafe-code' ? 'warning' : 'error',
      message: {
        text: `${message(f, options.showSecrets === true)}${
          inside ? ` (in ${f.location.join(' › ')}${f.line === undefined ? '' : `:${f.line}`})` : ''
        }`,
      },
      locations: [
        {
          physicalLocation: { artifactLocation: artifactLocation(f.file), region },
          ...(inside
            ? {
                logicalLocations: [
                  {
                    fullyQualifiedName: f.location.join(' › '),
                    kind: 'member',
                    ...(memberLine ? { properties: memberLine } : {}),
                  },
                ],
              }
            : {}),
        },
      ],
      partialFingerprints: { 'custosLocation/v1': formatLocation(f.file, f.location) },
    };
  });
  const sarif = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'custos-scan',
            fullName: `custos-scan ${options.version ?? '0.1.0'}`,
            informationUri: 'https://github.com/custos/custos',
            version: options.version ?? '0.1.0',
            rules,
          },
        },
        originalUriBaseIds: { [SRCROOT]: { uri: directoryUri(options.srcRoot ?? result.root) } },
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

const SECRET_HELP =
  'A credential in a file can be copied by anyone who can read the file, and by every log, artifact store and ' +
  'model hub the file travels to. Remove it, rotate the credential (it must be taken as leaked), and have the ' +
  'program receive it at run time instead (for example with `custos run --secret ENV=kv/path#field`).';

const UNSAFE_CODE_HELP =
  'Loading this pickle runs the imported global, so whoever wrote the file can run code on the machine that ' +
  'loads it. Load it only from a source you trust, or convert the model to a format that holds no code ' +
  '(safetensors, GGUF, ONNX).';

/** `openai-key` → `OpenaiKey`: the Pascal-case rule name SARIF viewers show. */
function friendlyName(id: string): string {
  return id
    .split(/[^A-Za-z0-9]+/)
    .filter((w) => w.length > 0)
    .map((w) => w[0]!.toUpperCase() + w.slice(1).toLowerCase())
    .join('');
}

function describe(id: string): string {
  if (id.startsWith('vault:')) return 'A value stored in the custos vault appears in the artifact';
  if (id.startsWith('known:')) return 'A known secret value appears in the artifact';
  if (id === 'pickle-unsafe-import') return 'A pickle imports a global that runs code when loaded';
  return `Secret detector ${id}`;
}
