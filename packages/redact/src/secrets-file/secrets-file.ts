import type { KnownSecret } from '../finding.js';

const ASSIGNMENT = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;

/**
 * Parses a secrets file for `custos redact --secrets-file`:
 * - a JSON array of `{ name, value }` or a JSON object `{ name: value }`;
 * - otherwise one secret per line. A line `NAME=value` (env-file style, with
 *   optional `export` and quotes) registers `value` under `NAME`; because a
 *   bare secret can itself contain `=` (base64 padding), the whole line is
 *   registered too, so nothing is lost to the guess. Other lines are values
 *   named `line-N`. Blank lines and lines starting with `# ` are skipped.
 *
 * Errors never quote the file's content.
 */
export function parseSecretsFile(text: string): KnownSecret[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    const doc = tryJson(trimmed);
    if (Array.isArray(doc)) {
      return doc
        .filter((e): e is KnownSecret => typeof e?.name === 'string' && typeof e?.value === 'string')
        .map((e) => ({ name: e.name, value: e.value }));
    }
    if (typeof doc === 'object' && doc !== null) {
      return Object.entries(doc)
        .filter((e): e is [string, string] => typeof e[1] === 'string')
        .map(([name, value]) => ({ name, value }));
    }
  }
  const out: KnownSecret[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('# ') || line === '#') continue;
    const m = ASSIGNMENT.exec(line);
    if (m) {
      let value = m[2]!.trim();
      if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) {
        value = value.slice(1, -1);
      }
      if (!/^=*$/.test(value)) out.push({ name: m[1]!, value });
    }
    out.push({ name: `line-${i + 1}`, value: line });
  }
  return out;
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
