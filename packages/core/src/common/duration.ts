import { CustosError } from '../errors/index.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a Go/Vault-style duration (`90s`, `15m`, `1h30m`, `2d`) or a bare
 * number of seconds into milliseconds. Rejects zero, negatives and anything
 * beyond `maxMs` with CUSTOS_ERR_INVALID_TTL.
 */
export function parseDuration(input: string | number, maxMs = 10 * 365 * 86_400_000): number {
  let ms: number;
  if (typeof input === 'number') {
    ms = input * 1_000;
  } else if (/^\d+$/.test(input)) {
    ms = Number(input) * 1_000;
  } else {
    const re = /(\d+)(ms|s|m|h|d)/gy;
    ms = 0;
    let consumed = 0;
    for (let m = re.exec(input); m; m = re.exec(input)) {
      ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
      consumed = re.lastIndex;
    }
    if (consumed !== input.length || input.length === 0) throw new CustosError('CUSTOS_ERR_INVALID_TTL');
  }
  if (!Number.isFinite(ms) || !Number.isInteger(ms) || ms <= 0 || ms > maxMs) {
    throw new CustosError('CUSTOS_ERR_INVALID_TTL');
  }
  return ms;
}

/** Formats milliseconds as a compact duration (`1h30m`). */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  let s = Math.floor(ms / 1_000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join('');
}
