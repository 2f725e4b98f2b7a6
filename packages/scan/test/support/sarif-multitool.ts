import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One problem the Multitool reports. */
export interface SarifProblem {
  readonly ruleId: string;
  readonly level: string;
  readonly message: string;
}

/**
 * The Microsoft SARIF Multitool binary (`@microsoft/sarif-multitool`, a
 * self-contained .NET program shipped in per-platform npm packages; its
 * `index.js` resolves to the one for this platform). Called directly rather
 * than through the package's `bin.js`, which goes through a shell and so
 * splits `;`-separated option values.
 */
const multitool: string = createRequire(import.meta.url)('@microsoft/sarif-multitool');

/**
 * Runs `sarif-multitool validate` on `sarif` with the rule sets for SARIF
 * itself and for GitHub code scanning, and returns the problems at
 * level error or warning (notes are suggestions, e.g. to fetch `$schema`
 * over the network, which this machine has not). The Multitool writes its
 * findings as SARIF; they are read from there, not from its console output.
 */
export async function validateSarif(sarif: string): Promise<SarifProblem[]> {
  const dir = mkdtempSync(join(tmpdir(), 'custos-sarif-'));
  try {
    const input = join(dir, 'report.sarif');
    const output = join(dir, 'validation.sarif');
    writeFileSync(input, sarif);
    await new Promise<void>((resolve, reject) => {
      execFile(
        multitool,
        [
          'validate',
          input,
          '--output',
          output,
          '--log',
          'ForceOverwrite',
          '--rule-kind',
          'Sarif;Gh',
          '--level',
          'Error;Warning',
        ],
        // No ICU needed: the tool runs the same on machines without libicu.
        { env: { ...process.env, DOTNET_SYSTEM_GLOBALIZATION_INVARIANT: '1' }, timeout: 120_000 },
        (error, stdout, stderr) => {
          if (error) reject(new Error(`sarif-multitool failed: ${error.message}\n${stdout}\n${stderr}`));
          else resolve();
        },
      );
    });
    const log = JSON.parse(readFileSync(output, 'utf8')) as {
      runs: {
        results?: { ruleId: string; level?: string; message: { text?: string; id?: string; arguments?: string[] } }[];
      }[];
    };
    return (log.runs[0]?.results ?? []).map((r) => ({
      ruleId: r.ruleId,
      level: r.level ?? 'warning',
      message: r.message.text ?? `${r.message.id ?? ''}: ${(r.message.arguments ?? []).join(' | ')}`,
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
