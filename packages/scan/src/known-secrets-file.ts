import type { KnownSecret } from '@custos/redact';

/**
 * Parses a `--secrets-file`: either JSON (`{"name": "value"}` or
 * `[{"name": …, "value": …}]`) or dotenv lines (`NAME=value`, `#` comments,
 * optional quotes). Names label findings; values are only ever matched.
 */
export function parseKnownSecrets(text: string): KnownSecret[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let doc: unknown;
    try {
      doc = JSON.parse(trimmed);
    } catch {
      throw new Error('secrets file is not valid JSON');
    }
    if (Array.isArray(doc)) {
      return doc
        .filter((e): e is KnownSecret => typeof e?.name === 'string' && typeof e?.value === 'string')
        .map((e) => ({ name: e.name, value: e.value }));
    }
    return Object.entries(doc as Record<string, unknown>)
      .filter((e): e is [string, string] => typeof e[1] === 'string')
      .map(([name, value]) => ({ name, value }));
  }
  const out: KnownSecret[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([^=\s]+)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]))
      value = value.slice(1, -1);
    if (value !== '') out.push({ name: m[1]!, value });
  }
  return out;
}
