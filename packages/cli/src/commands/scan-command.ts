import { readFileSync, writeFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import {
  type Baseline,
  createBaseline,
  fetchVaultFingerprints,
  jsonReport,
  parseBaseline,
  parseKnownSecrets,
  reportVaultMatches,
  type ScanLimits,
  type ScanProgress,
  sarifReport,
  scanPaths,
  textReport,
  type VaultFingerprints,
  type VaultMatch,
  vaultMatchOf,
} from '@custos/scan';
import type { Command } from 'commander';
import { CliError } from '../cli-io.js';
import { resolveRequestTimeout, withRequestTimeout } from '../request-timeout.js';

/** Streams (and, for tests, environment and working directory) the scan command uses. */
export interface ScanCommandIo {
  stdout: Writable;
  stderr: Writable;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The global `--timeout`, for `--against-vault` (see request-timeout.ts). */
  requestTimeout?: string;
}

interface ScanFlags {
  format: string;
  exclude?: string[];
  gitignore: boolean;
  showSecrets?: boolean;
  baseline?: string;
  writeBaseline?: string;
  secretsFile?: string;
  againstVault?: boolean;
  output?: string;
  progress: boolean;
  maxDepth?: string;
  maxEntries?: string;
  maxRatio?: string;
  maxMemberBytes?: string;
  maxFileSeconds?: string;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/**
 * `custos scan PATH…`: exit 0 when clean, 1 when anything is found (even if
 * some files could not be read), 2 when nothing was found but something
 * could not be scanned, or on a usage error. Sets `process.exitCode`.
 */
export function registerScanCommand(
  program: Command,
  io: ScanCommandIo = { stdout: process.stdout, stderr: process.stderr },
): void {
  program
    .command('scan <paths...>')
    .description('scan files, archives and model artifacts for secrets')
    .option('--format <format>', 'text, json or sarif', 'text')
    .option('--exclude <pattern>', 'gitignore-style pattern to skip (repeatable)', collect)
    .option('--no-gitignore', 'do not honour .gitignore files')
    .option('--show-secrets', 'print found values in full (default: masked)')
    .option('--baseline <file>', 'drop findings accepted by this baseline')
    .option('--write-baseline <file>', 'write a baseline accepting every finding of this scan')
    .option('--secrets-file <file>', 'also look for these exact values (NAME=value lines or JSON)')
    .option('--against-vault', 'check stored secrets by keyed hash (CUSTOS_ADDR, CUSTOS_TOKEN)')
    .option('-o, --output <file>', 'write the report to a file instead of stdout')
    .option('--no-progress', 'no progress bar on a terminal')
    .option('--max-depth <n>', 'archive nesting limit')
    .option('--max-entries <n>', 'entries per archive / metadata table limit')
    .option('--max-ratio <n>', 'decompression ratio limit')
    .option('--max-member-bytes <n>', 'bytes decompressed from one archive member')
    .option('--max-file-seconds <n>', 'time limit per file')
    .action(async (paths: string[], flags: ScanFlags) => {
      process.exitCode = await runScan(paths, flags, io);
    });
}

async function runScan(paths: string[], flags: ScanFlags, io: ScanCommandIo): Promise<number> {
  const env = io.env ?? process.env;
  const fail = (message: string): number => {
    io.stderr.write(`custos: SCAN_USAGE ${message}\n`);
    return 2;
  };
  if (!['text', 'json', 'sarif'].includes(flags.format)) return fail(`unknown format ${flags.format}`);
  let baseline: Baseline | undefined;
  let secrets: { name: string; value: string }[] | undefined;
  let vault: VaultFingerprints | undefined;
  let server: { addr: string; token: string } | undefined;
  let limits: Partial<ScanLimits>;
  try {
    limits = limitFlags(flags);
    if (flags.baseline) baseline = parseBaseline(readFileSync(flags.baseline, 'utf8'));
    if (flags.secretsFile) secrets = parseKnownSecrets(readFileSync(flags.secretsFile, 'utf8'));
    if (flags.againstVault) {
      const token = env.CUSTOS_TOKEN;
      if (!token) return fail('--against-vault needs CUSTOS_TOKEN');
      const addr = env.CUSTOS_ADDR ?? 'http://127.0.0.1:8420';
      server = { addr, token };
      vault = await withRequestTimeout(addr, resolveRequestTimeout({ ...io, env }), (signal) =>
        fetchVaultFingerprints({ addr, token, fetch: (url, init) => fetch(url, { ...init, signal }) }),
      );
    }
  } catch (err) {
    if (err instanceof CliError) {
      // A timeout or a bad --timeout: the CLI's own line and exit code, as for every other command.
      io.stderr.write(`custos: ${err.code} ${err.message}\n`);
      return err.exitCode;
    }
    // Messages here are fixed sentences or a path: no file content, no token.
    return fail((err as Error).message);
  }
  const bar = flags.progress && (io.stderr as { isTTY?: boolean }).isTTY ? progressBar(io.stderr) : undefined;
  const result = await scanPaths(paths, {
    secrets,
    vault,
    baseline,
    limits,
    exclude: flags.exclude,
    gitignore: flags.gitignore,
    cwd: io.cwd,
    onProgress: bar?.update,
  });
  bar?.done();
  if (vault && server) {
    const matches = vaultMatches(result.findings, vault);
    if (matches.length > 0) {
      try {
        const { addr, token } = server;
        await withRequestTimeout(addr, resolveRequestTimeout({ ...io, env }), (signal) =>
          reportVaultMatches({
            addr,
            token,
            source: 'scan',
            matches,
            fetch: (url, init) => fetch(url, { ...init, signal }),
          }),
        );
      } catch (err) {
        // The scan's own result still stands; the server just was not told.
        io.stderr.write(`custos: SCAN_REPORT could not report stored secrets found: ${(err as Error).message}\n`);
      }
    }
  }
  if (flags.writeBaseline) {
    writeFileSync(flags.writeBaseline, `${JSON.stringify(createBaseline(result.findings), null, 2)}\n`);
  }
  const options = { showSecrets: flags.showSecrets === true };
  const report =
    flags.format === 'json'
      ? jsonReport(result, options)
      : flags.format === 'sarif'
        ? sarifReport(result, options)
        : textReport(result, options);
  if (flags.output) writeFileSync(flags.output, report);
  else io.stdout.write(report);
  // Findings win over errors: an unreadable file must not hide a secret found elsewhere.
  if (flags.writeBaseline) return result.errors.length > 0 ? 2 : 0;
  return result.findings.length > 0 ? 1 : result.errors.length > 0 ? 2 : 0;
}

/**
 * The stored secrets a scan found by fingerprint, once each, with the
 * version the fingerprint list named. Every one is reported — the scanner
 * cannot tell a honeytoken from any other stored secret, by design.
 */
function vaultMatches(findings: readonly { ruleId: string }[], vault: VaultFingerprints): VaultMatch[] {
  const versions = new Map<string, number>();
  for (const f of vault.byHmac.values()) versions.set(`vault:${f.path}#${f.field}`, f.version);
  const out = new Map<string, VaultMatch>();
  for (const f of findings) {
    const match = vaultMatchOf(f.ruleId, versions.get(f.ruleId) ?? 0);
    if (match) out.set(f.ruleId, match);
  }
  return [...out.values()];
}

function limitFlags(flags: ScanFlags): Partial<ScanLimits> {
  const num = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
    return n;
  };
  const out: Record<string, number> = {};
  const set = (k: keyof ScanLimits, v: number | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  set('maxDepth', num(flags.maxDepth, '--max-depth'));
  set('maxEntries', num(flags.maxEntries, '--max-entries'));
  set('maxExpansionRatio', num(flags.maxRatio, '--max-ratio'));
  set('maxMemberBytes', num(flags.maxMemberBytes, '--max-member-bytes'));
  const secs = num(flags.maxFileSeconds, '--max-file-seconds');
  set('maxFileMs', secs === undefined ? undefined : secs * 1000);
  return out as Partial<ScanLimits>;
}

/** A one-line bar on stderr, redrawn at most 10 times a second; only on a terminal. */
function progressBar(out: Writable): { update: (p: ScanProgress) => void; done: () => void } {
  let last = 0;
  let shown = false;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 100 && p.filesDone < p.filesTotal) return;
      last = now;
      shown = true;
      const frac = p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : p.filesDone / Math.max(1, p.filesTotal);
      const width = 30;
      const full = Math.round(frac * width);
      out.write(
        `\r[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${p.filesDone}/${p.filesTotal} files`,
      );
    },
    done() {
      if (shown) out.write('\r\x1b[2K');
    },
  };
}
