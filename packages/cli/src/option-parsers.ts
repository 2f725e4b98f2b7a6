import { CliError, EXIT } from './cli-io.js';

/** Repeatable, comma-separated list option: `--policy a,b --policy c` → `[a, b, c]`. */
export const collectList = (value: string, previous: string[] = []): string[] => [
  ...previous,
  ...value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean),
];

/** Repeatable option kept verbatim: `--label a=1 --label b=2`. */
export const collectRepeat = (value: string, previous: string[] = []): string[] => [...previous, value];

/**
 * Scope entries, repeatable and space-separated as the API wants them:
 * `--scope read:kv/a/* --scope list:kv/a/*` or `--scope 'read:kv/a/* list:kv/a/*'`.
 */
export const collectScope = (value: string, previous: string[] = []): string[] => [
  ...previous,
  ...value.split(/\s+/).filter(Boolean),
];

/** Splits `key=value` arguments; a value may be empty, the key may not. */
export function parsePairs(pairs: readonly string[], flag: string): Array<[string, string]> {
  return pairs.map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new CliError('CUSTOS_ERR_USAGE', `${flag} expects key=value, got "${pair.slice(0, 40)}"`, EXIT.usage);
    }
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  });
}

/** `--label k=v…` as a record; a key given twice is a mistake, not "last one wins". */
export function parseLabels(pairs: readonly string[] | undefined): Record<string, string> | undefined {
  if (!pairs?.length) return undefined;
  const labels: Record<string, string> = {};
  for (const [key, value] of parsePairs(pairs, '--label')) {
    if (key in labels) throw new CliError('CUSTOS_ERR_USAGE', `--label ${key} given twice`, EXIT.usage);
    labels[key] = value;
  }
  return labels;
}

/** The options every task start takes (login, task start). */
export interface StartOptions {
  ttl?: string;
  scope?: string[];
  label?: string[];
}

/** The API body for those options: `{ ttl?, scope?, labels? }`. */
export function startBody(opts: StartOptions): { ttl?: string; scope?: string; labels?: Record<string, string> } {
  const labels = parseLabels(opts.label);
  return {
    ...(opts.ttl ? { ttl: opts.ttl } : {}),
    ...(opts.scope?.length ? { scope: opts.scope.join(' ') } : {}),
    ...(labels ? { labels } : {}),
  };
}
