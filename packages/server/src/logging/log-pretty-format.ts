export interface PrettyLogOptions {
  /** ANSI colours for the level (a terminal that has not asked for NO_COLOR). */
  readonly color?: boolean;
}

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '90' },
  20: { name: 'DEBUG', color: '34' },
  30: { name: 'INFO', color: '32' },
  40: { name: 'WARN', color: '33' },
  50: { name: 'ERROR', color: '31' },
  60: { name: 'FATAL', color: '35' },
};

/** Fields every line has, shown in the line's head or not at all. */
const HEAD_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'err']);

// C0 and C1 control characters and DEL: a log field can carry text from a
// request (a URL, a header value in an error), and printed raw to a terminal
// an escape sequence could rewrite the screen or the title. JSON lines
// escape C0 already; here every control character is shown as \uXXXX.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const escapeControls = (text: string) =>
  text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * Turns one of pino's JSON lines into a line for a person at a terminal:
 * `14:02:11.348 INFO  custos listening address=http://127.0.0.1:8420`, an
 * error's stack indented below it.
 *
 * Why not pino-pretty: it would add a dozen runtime packages to a secrets
 * server for what is forty lines here, and it must run synchronously on the
 * line the non-blocking {@link LogDestination} is about to write (a worker
 * transport would bring back a buffer that blocks or grows on a full disk).
 * Redaction has happened before this sees the line: pino censors paths while
 * serialising.
 */
export function formatPrettyLogLine(line: string, options: PrettyLogOptions = {}): string {
  let entry: Record<string, unknown>;
  try {
    const parsed = JSON.parse(line) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a log entry');
    entry = parsed as Record<string, unknown>;
  } catch {
    return `${escapeControls(line.replace(/\n$/, ''))}\n`;
  }
  const level = LEVELS[entry.level as number] ?? { name: String(entry.level ?? '?').toUpperCase(), color: '0' };
  const name = level.name.padEnd(5);
  const head = [
    clock(entry.time),
    options.color ? `\u001b[${level.color}m${name}\u001b[0m` : name,
    escapeControls(String(entry.msg ?? '')),
  ].join(' ');
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD_FIELDS.has(key))
    .map(([key, value]) => `${escapeControls(key)}=${fieldValue(value)}`);
  let text = fields.length > 0 ? `${head}  ${fields.join(' ')}` : head;
  const err = entry.err as { type?: unknown; message?: unknown; stack?: unknown } | undefined;
  if (err && typeof err === 'object') {
    const detail =
      typeof err.stack === 'string' ? err.stack : `${String(err.type ?? 'Error')}: ${String(err.message ?? '')}`;
    text += detail
      .split('\n')
      .map((l) => `\n    ${escapeControls(l)}`)
      .join('');
  }
  return `${text}\n`;
}

function clock(time: unknown): string {
  const date = typeof time === 'number' ? new Date(time) : new Date();
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function fieldValue(value: unknown): string {
  if (typeof value === 'string') {
    // Bare when unambiguous, JSON-quoted when it has spaces, quotes or `=`.
    return escapeControls(/^[^\s"'=]+$/.test(value) ? value : JSON.stringify(value));
  }
  if (value === undefined) return 'undefined';
  return escapeControls(JSON.stringify(value) ?? String(value));
}
