import { CONTAINER_FORMATS, FORMAT_READERS } from './format-readers.js';
import type { ReaderContext } from './reader-context.js';
import { detectFormat } from './readers/format-detect.js';
import { ScanFault } from './scan-fault.js';
import type { ScanLimits } from './scan-limits.js';
import type { ScanErrorCode, ScanErrorEntry, ScanFinding } from './scan-types.js';
import type { SecretMatcher } from './secret-matcher.js';
import type { ByteSource } from './source/byte-source.js';

/**
 * The scan of one file on disk: dispatches each (nested) source to its
 * reader, turns reader faults into error entries so that one broken member
 * never hides the rest, and owns the file's time and inflation budgets.
 */
export class FileSession {
  readonly findings: ScanFinding[] = [];
  readonly errors: ScanErrorEntry[] = [];
  private readonly seen = new Set<string>();
  private inflated = 0;
  private readonly deadline: number;

  constructor(
    private readonly file: string,
    private readonly matcher: SecretMatcher,
    readonly limits: ScanLimits,
  ) {
    this.deadline = Date.now() + limits.maxFileMs;
  }

  /** Scans the file itself. Never throws for a fault in the content. */
  async run(source: ByteSource, name: string): Promise<void> {
    await this.dispatch(source, name, [], 0);
  }

  private async dispatch(source: ByteSource, name: string, location: readonly string[], depth: number): Promise<void> {
    try {
      const head = await source.read(0, 512);
      const format = detectFormat(name, head);
      if (format === 'skip') return;
      if (CONTAINER_FORMATS.has(format) && depth >= this.limits.maxDepth) {
        throw new ScanFault('SCAN_ERR_DEPTH', 'archive nesting is deeper than the configured limit');
      }
      await FORMAT_READERS[format](source, location, this.context(depth), name);
    } catch (err) {
      if (err instanceof ScanFault) {
        // A spent budget ends the whole file, not just this member: it is recorded once, at the top.
        if (err.fatal && depth > 0) throw err;
        this.error(err.code, err.message, location);
        return;
      }
      if (depth > 0) throw err;
      this.error('SCAN_ERR_READ', `could not be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, location);
    }
  }

  private error(code: ScanErrorCode, message: string, location: readonly string[]): void {
    const key = `${code}\0${location.join('\0')}\0${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.errors.push({ kind: 'error', code, file: this.file, location, message });
  }

  private add(f: ScanFinding, start: number): void {
    const key = `${f.ruleId}\0${f.location.join('\0')}\0${f.line ?? ''}\0${start}\0${f.value}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.findings.push(f);
  }

  private context(depth: number): ReaderContext {
    const self = this;
    return {
      limits: this.limits,
      depth,
      inspectString(value, location) {
        if (value.length === 0) return;
        for (const m of self.matcher.match(value, true)) {
          self.add({ kind: m.kind, ruleId: m.ruleId, file: self.file, location, value: m.value }, m.start);
        }
      },
      inspectText(text, location, lineBase, ownedEnd) {
        for (const m of self.matcher.match(text, false)) {
          if (m.start >= ownedEnd) continue;
          const { line, column } = lineColumn(text, m.start, lineBase);
          self.add({ kind: m.kind, ruleId: m.ruleId, file: self.file, location, line, column, value: m.value }, column);
        }
      },
      unsafe(ruleId, message, value, location) {
        self.add({ kind: 'unsafe-code', ruleId, file: self.file, location, value, message }, 0);
      },
      error: (code, message, location) => this.error(code, message, location),
      checkTime() {
        if (Date.now() > self.deadline)
          throw new ScanFault('SCAN_ERR_TIMEOUT', 'file took longer than the time limit', true);
      },
      chargeInflated(bytes) {
        self.inflated += bytes;
        if (self.inflated > self.limits.maxTotalInflatedBytes) {
          throw new ScanFault('SCAN_ERR_LIMIT', 'file decompresses to more than the configured total', true);
        }
      },
      descend: (source, name, location) => this.dispatch(source, name, location, depth + 1),
    };
  }
}

function lineColumn(text: string, at: number, lineBase: number): { line: number; column: number } {
  let line = lineBase;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: at - lineStart + 1 };
}
