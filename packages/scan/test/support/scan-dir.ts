import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type ScanOptions, scanPaths } from '../../src/index.js';

/** A temporary directory of fixture files, scanned with the real scanner (real redaction detectors). */
export class FixtureDir {
  readonly root = mkdtempSync(join(tmpdir(), 'custos-scan-'));
  write(name: string, data: Buffer | string): string {
    const p = join(this.root, name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, data);
    return p;
  }
  scan(paths: string[] = ['.'], options: ScanOptions = {}) {
    return scanPaths(paths, { cwd: this.root, ...options });
  }
  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** `file › a › b` for each finding, to compare locations exactly. */
export function where(r: { findings: { file: string; location: readonly string[]; ruleId: string }[] }): string[] {
  return r.findings.map((f) => [f.file, ...f.location].join(' › ')).sort();
}
