import type { CliIo } from './cli-io.js';

/** Prints `data` as JSON with --json, otherwise the human form. */
export function emit(io: CliIo, json: boolean | undefined, data: unknown, human: () => string): void {
  io.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

/** Two aligned columns of key/value lines. */
export function table(rows: ReadonlyArray<readonly [string, unknown]>): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v === null || v === undefined ? '-' : String(v)}`).join('\n');
}

/** Parses `1,2,3` into version numbers. */
export function parseVersions(text: string): number[] {
  return text.split(',').map((v) => {
    const n = Number(v.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error(`not a version number: ${v}`);
    return n;
  });
}
